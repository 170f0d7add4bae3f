"""TransformTree: composition through a common ancestor, loud named failures, stale dynamic links."""
import numpy as np
import pytest

from vla_ros.core.calibration import load_calibration
from vla_ros.core.config import ConfigError
from vla_ros.core.tf_tree import TransformError, TransformTree
from vla_ros.core.transforms import pose_to_matrix


def T(xyz, quat=(0, 0, 0, 1)):
    return pose_to_matrix(np.array(xyz, float), np.array(quat, float))


def test_chain_through_common_ancestor_known_answer():
    tree = TransformTree()
    tree.set_transform("base", "camera_link", T([1, 0, 0]), None)
    tree.set_transform("camera_link", "camera_optical", T([0, 0, 0], [-0.5, 0.5, -0.5, 0.5]), None)
    tree.set_transform("base", "hand", T([0, 1, 0]), 5.0)
    M, stamp = tree.lookup("base", "camera_optical")
    # optical z (forward) is camera_link x: a point 2 m in front of the optical frame is at base (3, 0, 0)
    np.testing.assert_allclose(M @ [0, 0, 2, 1], [3, 0, 0, 1], atol=1e-12)
    assert stamp is None
    M, stamp = tree.lookup("hand", "camera_link", now_s=5.1, max_age_s=1.0)
    np.testing.assert_allclose(M[:3, 3], [1, -1, 0])
    assert stamp == 5.0


def test_missing_frame_and_disconnected_trees_are_named():
    tree = TransformTree()
    tree.set_transform("base", "camera_link", T([1, 0, 0]), None)
    with pytest.raises(TransformError, match="source frame 'camera_color_optical_frame' unknown"):
        tree.lookup("base", "camera_color_optical_frame")
    tree.set_transform("world", "table", T([0, 0, 0]), None)
    with pytest.raises(TransformError, match="unconnected"):
        tree.lookup("base", "table")


def test_stale_dynamic_link_raises():
    tree = TransformTree()
    tree.set_transform("base", "cam", T([1, 0, 0]), 1.0)
    with pytest.raises(TransformError, match="stale"):
        tree.lookup("base", "cam", now_s=3.0, max_age_s=0.5)


def test_calibration_yaml(tmp_path):
    p = tmp_path / "calib.yaml"
    p.write_text("base_frame: fr3_link0\ncameras:\n  front:\n    translation_m: [0.5, 0, 0.6]\n"
                 "    quaternion_xyzw: [0, 0, 0, 2]\n")
    base, cams = load_calibration(p)
    assert base == "fr3_link0"
    np.testing.assert_allclose(cams["front"], T([0.5, 0, 0.6]))
    p.write_text("cameras:\n  front:\n    translation: [0.5, 0, 0.6]\n")
    with pytest.raises(ConfigError, match="translation"):
        load_calibration(p)


def test_lookups_while_a_tf_callback_adds_frames():
    """A tf callback thread adds frames while the policy worker looks transforms up: no 'dictionary changed size
    during iteration' escapes (it is not a TransformError, so it would abort the assembly)."""
    import threading

    tree = TransformTree()
    tree.set_transform("base", "cam", np.eye(4), None)
    errors, done = [], threading.Event()

    def writer():
        for i in range(20000):
            tree.set_transform("base", f"f{i}", np.eye(4), float(i))
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    try:
        while not done.is_set():
            try:
                tree.lookup("base", "cam")
            except RuntimeError as exc:
                errors.append(exc)
                break
    finally:
        t.join()
    assert not errors, errors
