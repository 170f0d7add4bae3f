"""Intrinsics, joint mapping and observation assembly with known answers."""
import numpy as np
import pytest

from vla_ros.core.camera import CameraInfoError, intrinsics_from_fields
from vla_ros.core.config import ConfigError, from_dict
from vla_ros.core.depth import DepthAlignmentError, check_aligned, clean_depth
from vla_ros.core.joints import JointMapper, JointStateError
from vla_ros.core.sync import ObservationAssembler, ObservationConfig

K = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
K_4x3 = [3.0, 0.0, 1.5, 0.0, 3.0, 1.0, 0.0, 0.0, 1.0]


def test_intrinsics_resize_and_crop_known_answers():
    intr = intrinsics_from_fields(K, [0.1, 0, 0, 0, 0], 640, 480, "plumb_bob")
    half = intr.resized(320, 240)
    np.testing.assert_allclose(half.K, [[250, 0, 159.5], [0, 250, 119.5], [0, 0, 1]])
    crop = intr.cropped(80, 0, 480, 480)
    np.testing.assert_allclose(crop.K[:2, 2], [239.5, 239.5])
    # A 3-D point projects to the same place in the cropped-then-resized image as it does when
    # the original projection is cropped and scaled.
    p = np.array([0.1, -0.05, 1.0])
    uv = intr.K @ p
    uv = uv[:2] / uv[2]
    small = crop.resized(96, 96)
    uv2 = small.K @ p
    uv2 = uv2[:2] / uv2[2]
    np.testing.assert_allclose(uv2, (uv - [80, 0] + 0.5) * 96 / 480 - 0.5)


def test_empty_k_is_an_error_naming_k():
    with pytest.raises(CameraInfoError, match="k"):
        intrinsics_from_fields([0.0] * 9, [], 640, 480)
    with pytest.raises(CameraInfoError, match="k"):
        intrinsics_from_fields([], [], 640, 480)


def test_joint_mapper_orders_by_name_and_names_bad_joints():
    m = JointMapper(["j1", "j2", "j3"])
    np.testing.assert_array_equal(m.map(["j3", "finger", "j1", "j2"], [3.0, 9.0, 1.0, 2.0]), [1, 2, 3])
    with pytest.raises(JointStateError, match=r"missing joints \['j3'\]"):
        m.map(["j1", "j2"], [0, 0])
    with pytest.raises(JointStateError, match="duplicate.*j1"):
        m.map(["j1", "j1", "j2", "j3"], [0, 0, 0, 0])
    with pytest.raises(JointStateError, match=r"non-finite.*\['j2'\]"):
        m.map(["j1", "j2", "j3"], [0, np.nan, 0])


def test_depth_validity_and_alignment():
    d, valid = clean_depth(np.array([[0.0, np.nan], [1.5, np.inf]], np.float32))
    np.testing.assert_array_equal(valid, [[False, False], [True, False]])
    np.testing.assert_array_equal(d, [[0, 0], [1.5, 0]])
    with pytest.raises(DepthAlignmentError, match="aligned"):
        check_aligned("camera_color_optical_frame", "camera_depth_optical_frame", (480, 640), (480, 640))


def make_assembler(**kw):
    cfg = from_dict(ObservationConfig, {
        "cameras": [{"name": "front", "depth_topic": "/camera/aligned_depth_to_color/image_raw"}],
        "joint_names": ["j1", "j2"], **kw})
    a = ObservationAssembler(cfg)
    a.add_camera_info("front", intrinsics_from_fields(K_4x3, [], 4, 3))
    a.set_instruction("pick the red block")
    return a


RGB = np.zeros((3, 4, 3), np.uint8)
DEPTH = np.ones((3, 4), np.float32)


def test_valid_observation_with_joints_interpolated_at_image_stamp():
    a = make_assembler()
    a.add_joint_state(9.90, [0.0, 1.0])
    a.add_joint_state(10.00, [1.0, 3.0])
    a.add_joint_state(10.10, [2.0, 5.0])  # newer than the image: "latest" would be wrong
    a.add_image("front", 10.05, RGB)
    a.add_depth("front", 10.06, DEPTH)
    obs = a.assemble(now_s=10.12)
    assert obs.valid, obs.reasons
    assert obs.stamp_s == 10.05
    np.testing.assert_allclose(obs.proprio, [1.5, 4.0])
    assert obs.cameras[0].depth_m is not None and obs.cameras[0].depth_valid.all()
    assert obs.ages_s["rgb/front"] == pytest.approx(0.07)
    assert obs.ages_s["depth/front"] == pytest.approx(0.06)


def test_stale_depth_is_reported_and_dropped_unless_required():
    a = make_assembler()
    a.add_joint_state(10.0, [0, 0])
    a.add_image("front", 10.0, RGB)
    a.add_depth("front", 9.0, DEPTH)
    obs = a.assemble(now_s=10.02)
    assert obs.valid and obs.cameras[0].depth_m is None
    assert any("depth 'front' stale" in r for r in obs.reasons)
    b = make_assembler(require_depth=True)
    b.add_joint_state(10.0, [0, 0])
    b.add_image("front", 10.0, RGB)
    b.add_depth("front", 9.0, DEPTH)
    obs = b.assemble(now_s=10.02)
    assert not obs.valid and any("depth 'front' stale" in r for r in obs.reasons)


def test_missing_and_stale_sources_make_the_observation_invalid():
    a = make_assembler()
    obs = a.assemble(now_s=1.0)
    assert not obs.valid and "rgb 'front' missing" in obs.reasons[0]
    a.add_image("front", 10.0, RGB)
    obs = a.assemble(now_s=11.0)
    assert not obs.valid
    text = " | ".join(obs.reasons)
    assert "rgb 'front' stale" in text and "joints missing" in text
    a.set_instruction("")
    assert "instruction missing" in " ".join(a.assemble(now_s=10.0).reasons)


def test_extrinsics_required_and_static():
    a = make_assembler(require_extrinsics=True)
    a.add_joint_state(10.0, [0, 0])
    a.add_image("front", 10.0, RGB)
    obs = a.assemble(now_s=10.0)
    assert not obs.valid and "extrinsics 'front' missing" in " ".join(obs.reasons)
    T = np.eye(4)
    T[:3, 3] = [0.5, 0, 0.6]
    a.set_extrinsics("front", T)
    obs = a.assemble(now_s=10.0)
    assert obs.valid and np.allclose(obs.cameras[0].T_base_camera, T)


def test_config_rejects_unknown_keys_by_name():
    with pytest.raises(ConfigError, match="cameras\\[0\\].depth_topik"):
        from_dict(ObservationConfig, {"cameras": [{"name": "front", "depth_topik": "/d"}]})
    with pytest.raises(ConfigError, match="slop_s"):
        from_dict(ObservationConfig, {"slop_s": 5.0})


def test_reference_is_the_newest_rgb_that_has_its_depth():
    a = make_assembler()
    a.add_joint_state(10.0, [0, 0])
    a.add_joint_state(10.2, [0, 0])
    a.add_image("front", 10.0, RGB)
    a.add_depth("front", 10.002, DEPTH)
    a.add_image("front", 10.1, RGB)  # its depth has not arrived yet
    obs = a.assemble(now_s=10.11)
    assert obs.stamp_s == 10.0 and obs.cameras[0].depth_m is not None
    a.add_depth("front", 10.101, DEPTH)
    obs = a.assemble(now_s=10.12)
    assert obs.stamp_s == 10.1 and obs.cameras[0].depth_m is not None


def test_two_cameras_synchronised_within_slop():
    cfg = from_dict(ObservationConfig, {
        "cameras": [{"name": "front"}, {"name": "wrist", "rgb_topic": "/wrist/image", "info_topic": "/wrist/info"}],
        "joint_names": ["j1", "j2"], "slop_s": 0.02})
    a = ObservationAssembler(cfg)
    for cam in ("front", "wrist"):
        a.add_camera_info(cam, intrinsics_from_fields(K_4x3, [], 4, 3))
    a.set_instruction("x")
    a.add_joint_state(10.0, [0, 0])
    a.add_image("front", 10.0, RGB)
    a.add_image("wrist", 9.90, RGB)
    a.add_image("wrist", 10.01, RGB)
    obs = a.assemble(now_s=10.02)
    assert obs.valid and [c.name for c in obs.cameras] == ["front", "wrist"]
    assert obs.cameras[1].stamp_s == 10.01
    a.add_image("front", 10.2, RGB)  # the wrist camera lags: out of sync
    obs = a.assemble(now_s=10.21)
    assert not obs.valid and any("out of sync" in r for r in obs.reasons)


def test_future_stamped_sources_are_refused_by_name():
    """Finding 2, observation side: sensor stamps 10 s ahead (clock skew) looked fresh; now they are refused."""
    a = make_assembler()
    a.add_joint_state(20.0, [0, 0])
    a.add_image("front", 20.0, RGB)
    a.add_depth("front", 20.0, DEPTH)
    obs = a.assemble(now_s=10.0)
    assert not obs.valid
    text = " | ".join(obs.reasons)
    assert "rgb 'front' stamped 10.000 s in the future > max 0.1 s" in text
    assert "depth 'front' stamped 10.000 s in the future" in text and "joints stamped 10.000 s in the future" in text
    b = make_assembler()  # within the tolerance (a few ms of skew) it is fine
    b.add_joint_state(10.05, [0, 0])
    b.add_image("front", 10.05, RGB)
    assert b.assemble(now_s=10.0).valid


def test_the_feed_names_bad_input_and_keeps_nothing_of_it():
    """An unknown camera, joints without configured joint_names and a malformed pose are ValueErrors that name
    the input (the bag reader skips exactly those), and a refused image leaves no trace; (arms, 7) poses are fine."""
    from vla_ros.core.observation_feed import ObservationFeed

    feed = ObservationFeed(from_dict(ObservationConfig, {"cameras": [{"name": "front"}], "ee_pose_topic": "/p"}))
    rgb = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="camera 'side': not in the observation config; cameras: \\['front'\\]"):
        feed.add_image("side", 1.0, rgb, "side_optical")
    assert "side" not in feed.frames
    with pytest.raises(ValueError, match="names no joint_names"):
        feed.add_joint_state(1.0, ["j1"], [0.0])
    two_arms = np.array([[0.3, 0.2, 0.4, 0, 0, 0, 1.0], [0.3, -0.2, 0.4, 1.0, 0, 0, 0]])
    feed.add_ee_pose(1.0, two_arms)
    bad = two_arms.copy()
    bad[1, 3:] = [0.5, 0, 0, 0.5]
    with pytest.raises(ValueError, match="not a unit quaternion"):
        feed.add_ee_pose(1.0, bad)
    with pytest.raises(ValueError, match="got shape \\(6,\\)"):
        feed.add_ee_pose(1.0, np.zeros(6))
