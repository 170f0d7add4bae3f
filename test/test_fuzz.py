"""Fuzz: random Image, CompressedImage, CameraInfo, JointState and ActionChunk messages never crash the
converters or the executor (only the named errors), and never produce an unsafe command; random YAML
mutations are rejected with the key named."""
import copy

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vla_ros.core.camera import CameraInfoError
from vla_ros.core.config import ConfigError, from_dict
from vla_ros.core.image import ImageFormatError
from vla_ros.core.joints import JointMapper, JointStateError
from vla_ros.core.transforms import quat_angle_rad
from vla_ros.runtime_config import RuntimeConfig, resolve_config_path

ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "32FC1", "yuv422", "", "8UC3"]
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(enc=st.sampled_from(ENCODINGS), h=st.integers(0, 6), w=st.integers(0, 6), step=st.integers(0, 40),
       big=st.booleans(), data=st.binary(max_size=300))
def test_image_messages(enc, h, w, step, big, data):
    from sensor_msgs.msg import Image

    from vla_ros.ros.msg_conversions import image_msg_to_array

    msg = Image(height=h, width=w, encoding=enc, step=step, is_bigendian=int(big), data=data)
    try:
        out = image_msg_to_array(msg)
    except ImageFormatError:
        return
    assert out.shape[:2] == (h, w)


def _encoded(kind: str, h: int, w: int, seed: int) -> tuple[np.ndarray, bytes]:
    import io

    from PIL import Image as PILImage

    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format=kind)
    return rgb, buf.getvalue()


@st.composite
def compressed_payloads(draw):
    """Random bytes, or a real PNG/JPEG (or compressedDepth PNG), cut short at a random length or intact."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200))
    rgb, data = _encoded(draw(st.sampled_from(["PNG", "JPEG"])), draw(st.integers(1, 6)), draw(st.integers(1, 6)),
                         draw(st.integers(0, 2**16)))
    if draw(st.booleans()):  # a compressedDepth header in front (the PNG is 8-bit RGB: not a valid depth image)
        data = bytes(12) + data
    return data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@SETTINGS
@given(fmt=st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "16UC1; compressedDepth png",
                            "32FC1; compressedDepth", "tiff", ""]), data=compressed_payloads())
def test_compressed_messages(fmt, data):
    """Only ImageFormatError, and what decodes has the documented shape: (H, W, 3) uint8 RGB, or (H, W) float32
    metres for compressedDepth."""
    from vla_ros.core.image import compressed_to_array

    try:
        out = compressed_to_array(fmt, data)
    except ImageFormatError:
        return
    if "compresseddepth" in fmt.lower():
        assert out.dtype == np.float32 and out.ndim == 2, (out.dtype, out.shape)
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, (out.dtype, out.shape)


@SETTINGS
@given(h=st.integers(1, 6), w=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_intact_png_and_jpeg_decode_to_their_image(h, w, seed):
    from vla_ros.core.image import compressed_to_array

    rgb, png = _encoded("PNG", h, w, seed)
    np.testing.assert_array_equal(compressed_to_array("png", png), rgb)
    _, jpeg = _encoded("JPEG", h, w, seed)
    assert compressed_to_array("rgb8; jpeg compressed bgr8", jpeg).shape == (h, w, 3)


@SETTINGS
@given(k=st.lists(floats, max_size=12), w=st.integers(-2, 2000), h=st.integers(-2, 2000))
def test_camera_info(k, w, h):
    from vla_ros.core.camera import intrinsics_from_fields

    try:
        intr = intrinsics_from_fields(k, [], w, h)
    except CameraInfoError:
        return
    assert np.isfinite(intr.K).all() and intr.K[0, 0] > 0


@SETTINGS
@given(names=st.lists(st.sampled_from(["j1", "j2", "j3", "j4", "x"]), max_size=6), pos=st.lists(floats, max_size=6))
def test_joint_states(names, pos):
    try:
        q = JointMapper(["j1", "j2", "j3"]).map(names, pos)
    except JointStateError:
        return
    assert q.shape == (3,) and np.isfinite(q).all()


def _chunk_msg(data, stamp_s):
    from geometry_msgs.msg import Pose

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.msg_conversions import s_to_stamp

    horizon = data.draw(st.integers(0, 5))
    arms = data.draw(st.sampled_from([["arm"], ["left", "right"], []]))
    n = data.draw(st.integers(0, 12))
    big = st.floats(-10, 10) | floats
    msg = ActionChunk(horizon=horizon, arm_names=arms, dt_s=float(data.draw(st.floats(-1, 1) | floats)),
                      reference=data.draw(st.integers(0, 4)))
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.header.frame_id = data.draw(st.sampled_from(["fr3_link0", "world", ""]))
    poses = []
    for _ in range(n):
        p = Pose()
        p.position.x, p.position.y, p.position.z = (data.draw(big) for _ in range(3))
        p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (data.draw(big) for _ in range(4))
        poses.append(p)
    msg.poses = poses
    msg.gripper = [data.draw(st.floats(-2, 2) | floats) for _ in range(n)]
    return msg


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_action_chunks_never_produce_an_unsafe_command(data):
    from vla_ros.core.executor import Executor
    from vla_ros.ros.chunk_msg import ChunkMessageError, msg_to_chunk
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config("franka")
    ex = Executor(cfg.executor)
    s = cfg.executor.safety
    lo, hi = np.asarray(s.workspace_min_m), np.asarray(s.workspace_max_m)
    period = 1.0 / cfg.executor.rate_hz
    t, prev = 100.0, None
    for _ in range(4):
        try:
            chunk = msg_to_chunk(_chunk_msg(data, t))
            ex.on_chunk(chunk, t + 0.05)
        except ChunkMessageError:
            pass
        for _ in range(5):
            t += period
            cmd = ex.tick(t)
            if cmd.kind != "move":
                continue
            tgt = cmd.target
            assert np.isfinite(tgt.position_m).all() and np.isfinite(tgt.quat_xyzw).all()
            assert np.all(tgt.position_m >= lo - 1e-9) and np.all(tgt.position_m <= hi + 1e-9)
            assert np.all((tgt.gripper >= 0) & (tgt.gripper <= 1))
            if prev is not None:
                step = np.linalg.norm(tgt.position_m - prev.position_m, axis=-1)
                assert np.all(step <= min(s.max_step_m, s.max_speed_m_s * period) + 1e-9)
                assert np.all(quat_angle_rad(tgt.quat_xyzw, prev.quat_xyzw) <= min(s.max_step_rad,
                                                                                  s.max_speed_rad_s * period) + 1e-6)
            prev = tgt


def _paths(d, prefix=()):
    for k, v in d.items():
        yield (*prefix, k), v
        if isinstance(v, dict):
            yield from _paths(v, (*prefix, k))


BASE = yaml.safe_load(resolve_config_path("franka").read_text())
PATHS = [p for p, v in _paths(BASE)]
LEAVES = [p for p, v in _paths(BASE) if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


@settings(max_examples=80, deadline=None)
@given(path=st.sampled_from(PATHS), junk=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=10))
def test_yaml_unknown_key_is_named(path, junk):
    d = copy.deepcopy(BASE)
    target = d
    for k in path[:-1]:
        target = target[k]
    if not isinstance(target, dict) or f"zz_{junk}" in target:
        return
    target[f"zz_{junk}"] = 1
    with pytest.raises(ConfigError, match=f"zz_{junk}"):
        from_dict(RuntimeConfig, d)


@settings(max_examples=80, deadline=None)
@given(path=st.sampled_from(LEAVES), bad=st.sampled_from(["fast", [1, 2], {"a": 1}, None]))
def test_yaml_wrong_type_is_named(path, bad):
    d = copy.deepcopy(BASE)
    _set(d, path, bad)
    with pytest.raises(ConfigError, match=path[-1]):
        from_dict(RuntimeConfig, d)


@pytest.mark.parametrize("path,value", [(("executor", "rate_hz"), 0.0), (("executor", "rate_hz"), 1e6),
                                        (("executor", "safety", "max_step_m"), -1.0),
                                        (("executor", "safety", "chunk_timeout_s"), 0.0),
                                        (("observation", "slop_s"), 5.0), (("policy", "rate_hz"), 0.0),
                                        (("adapter", "settings", "close_below"), 0.9)])
def test_yaml_out_of_range_is_named(path, value):
    d = copy.deepcopy(BASE)
    _set(d, path, value)
    with pytest.raises(ConfigError, match=path[-1]):
        from_dict(RuntimeConfig, d)
