"""The messages of a policy on another machine: an Observation <-> a flat dict of arrays and strings (openpi's
style: `observation/...` keys and `prompt`), and an ActionChunk <-> a reply dict with `actions` (T, D).

Field names (what a YAML `key_map` maps to a foreign server's keys): `instruction`, `state`, `state_names`,
`ee_pose`, `stamp_s`, and per camera `<cam>.rgb`, `<cam>.depth_m`, `<cam>.depth_valid`, `<cam>.K`,
`<cam>.T_base_camera`, `<cam>.stamp_s`. Without a key_map every field goes under its native key below.

A reply's `actions` is (T, 7 * arms): per arm x, y, z (m), a rotation vector (rad) relative to the policy's
`rotation_ref_quat_xyzw`, and the gripper (0 closed .. 1 open), i.e. the project's action layout. A vla_ros
server adds the chunk's exact poses (`position_m`, `quat_xyzw`, `gripper`), which a vla_ros client prefers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.actions import actions_to_poses, poses_to_actions
from vla_ros.core.constants import MOD_DEPTH, MOD_POSE, REFERENCES
from vla_ros.core.types import ActionChunk, CameraObservation, Observation

CAMERA_FIELDS = ("rgb", "depth_m", "depth_valid", "K", "T_base_camera", "stamp_s")
GLOBAL_FIELDS = ("instruction", "state", "state_names", "ee_pose", "stamp_s")
_NATIVE_GLOBAL = {"instruction": "prompt", "state": "observation/state", "state_names": "observation/state_names",
                  "ee_pose": "observation/ee_pose", "stamp_s": "observation/stamp_s"}
_NATIVE_CAMERA = {"rgb": "image", "depth_m": "depth_m", "depth_valid": "depth_valid", "K": "K",
                  "T_base_camera": "T_base_camera", "stamp_s": "stamp_s"}
CAMERAS_KEY = "observation/cameras"
MODALITIES_KEY = "modalities"
EPISODE_START_KEY = "episode_start"


class ProtocolError(ValueError):
    """A request or reply that does not fit the protocol; the message names the key."""


@dataclass
class RemoteConfig:
    """What the policy node checks of a policy (PolicyConfig's names), for a policy on another machine.

    Args:
        arm_names, proprio_names, proprio_dim, camera_names: as in PolicyConfig.
        horizon: steps per chunk; dt_s: step period.
        action_reference: absolute | delta_target | delta_measured.
        rotation_ref_quat_xyzw: rotations in `actions` are relative to this.
        name: reported as ActionChunk.policy_name.
    """

    arm_names: list[str]
    proprio_dim: int
    horizon: int
    dt_s: float
    proprio_names: list[str] = field(default_factory=list)
    camera_names: list[str] = field(default_factory=list)
    action_reference: str = "absolute"
    rotation_ref_quat_xyzw: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 1.0])
    name: str = "remote"

    def __post_init__(self):
        if self.action_reference not in REFERENCES:
            raise ProtocolError(f"action_reference: {self.action_reference!r}, expected one of {REFERENCES}")
        if self.horizon < 1 or not 1e-3 <= self.dt_s <= 10.0:
            raise ProtocolError(f"horizon {self.horizon} / dt_s {self.dt_s}: expected >= 1 / 0.001..10 s")


def native_key(name: str) -> str:
    """The native wire key of a field name (`front.rgb` -> `observation/front/image`)."""
    if name in _NATIVE_GLOBAL:
        return _NATIVE_GLOBAL[name]
    cam, _, part = name.rpartition(".")
    if not cam or part not in _NATIVE_CAMERA:
        raise ProtocolError(f"key_map: unknown field {name!r}; fields are {list(GLOBAL_FIELDS)} and "
                            f"<camera>.{{{','.join(CAMERA_FIELDS)}}}")
    return f"observation/{cam}/{_NATIVE_CAMERA[part]}"


def observation_fields(obs: Observation, modalities: tuple[str, ...]) -> dict:
    """Field name -> value of everything the observation holds that `modalities` asks for."""
    out = {"instruction": obs.instruction, "state": np.asarray(obs.proprio, np.float32),
           "state_names": list(obs.proprio_names), "stamp_s": float(obs.stamp_s)}
    if obs.ee_pose is not None:
        out["ee_pose"] = np.asarray(obs.ee_pose, np.float64)
    for cam in obs.cameras:
        out[f"{cam.name}.rgb"] = np.ascontiguousarray(cam.rgb, np.uint8)
        out[f"{cam.name}.K"] = np.asarray(cam.K, np.float64)
        out[f"{cam.name}.stamp_s"] = float(cam.stamp_s)
        if MOD_DEPTH in modalities and cam.depth_m is not None:
            out[f"{cam.name}.depth_m"] = np.ascontiguousarray(cam.depth_m, np.float32)
            valid = cam.depth_valid if cam.depth_valid is not None else cam.depth_m > 0
            out[f"{cam.name}.depth_valid"] = np.ascontiguousarray(valid, bool)
        if MOD_POSE in modalities and cam.T_base_camera is not None:
            out[f"{cam.name}.T_base_camera"] = np.asarray(cam.T_base_camera, np.float64)
    return out


def resize_with_pad(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """openpi-client's `image_tools.resize_with_pad` (tf.image.resize_with_pad through PIL): scale to fit
    (bilinear), keep the aspect ratio, centre on zeros."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if (h, w) == (height, width):
        return rgb
    ratio = max(w / width, h / height)
    rh, rw = int(h / ratio), int(w / ratio)
    small = Image.fromarray(np.ascontiguousarray(rgb)).resize((rw, rh), resample=Image.BILINEAR)
    canvas = Image.new(small.mode, (width, height), 0)
    canvas.paste(small, (max(0, int((width - rw) / 2)), max(0, int((height - rh) / 2))))
    return np.asarray(canvas)


def encode_observation(obs: Observation, modalities: tuple[str, ...], key_map: dict[str, str] | None = None,
                       episode_start: bool = False, image_size: int = 0) -> dict:
    """An observation -> a request dict. With a `key_map` (field -> key) only the mapped fields are sent, under
    the foreign server's keys (a mapped field the observation lacks is an error), images resized with padding to
    `image_size` square when given (as openpi's example clients do, e.g. 224); without a key_map, every field
    under its native key, plus the camera order and the modalities asked for."""
    fields = observation_fields(obs, modalities)
    if key_map:
        lacking = [f for f in key_map if f not in fields]
        if lacking:
            raise ProtocolError(f"key_map names {lacking}, which this observation lacks (has {sorted(fields)})")
        if image_size:
            fields = {f: resize_with_pad(v, image_size, image_size) if f.endswith(".rgb") else v
                      for f, v in fields.items()}
        return {key: fields[f] for f, key in key_map.items()}
    msg = {native_key(f): v for f, v in fields.items()}
    msg[CAMERAS_KEY] = [c.name for c in obs.cameras]
    msg[MODALITIES_KEY] = list(modalities)
    if episode_start:
        msg[EPISODE_START_KEY] = True
    return msg


def _array(msg: dict, key: str, ndim: int, dtype, last: tuple = ()) -> np.ndarray:
    val = msg.get(key)
    if not isinstance(val, np.ndarray):
        raise ProtocolError(f"{key}: expected an array, got {type(val).__name__}")
    if val.ndim != ndim or (last and val.shape[-len(last):] != last):
        raise ProtocolError(f"{key}: shape {val.shape} is not {ndim}-d ending in {last}")
    if val.dtype.kind not in "biuf":
        raise ProtocolError(f"{key}: dtype {val.dtype} is not numeric")
    return np.array(val, dtype)  # a writable copy (decoded arrays share the read-only message buffer)


def decode_observation(msg: dict) -> tuple[Observation, tuple[str, ...], bool]:
    """A native request -> (Observation, modalities asked for, episode start); ProtocolError names a bad key."""
    if not isinstance(msg, dict):
        raise ProtocolError(f"request: expected a map, got {type(msg).__name__}")
    names = msg.get(CAMERAS_KEY)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ProtocolError(f"{CAMERAS_KEY}: expected a non-empty list of camera names")
    cams = []
    for name in names:
        key = f"observation/{name}/"
        rgb = _array(msg, key + "image", 3, np.uint8, (3,))
        K = _array(msg, key + "K", 2, np.float64, (3,))
        depth = valid = T = None
        if key + "depth_m" in msg:
            depth = _array(msg, key + "depth_m", 2, np.float32)
            valid = _array(msg, key + "depth_valid", 2, bool) if key + "depth_valid" in msg else depth > 0
            if depth.shape != rgb.shape[:2] or valid.shape != depth.shape:
                raise ProtocolError(f"{key}depth_m: shape {depth.shape} != image {rgb.shape[:2]}")
        if key + "T_base_camera" in msg:
            T = _array(msg, key + "T_base_camera", 2, np.float64, (4,))
        cams.append(CameraObservation(name, rgb, K, float(msg.get(key + "stamp_s", 0.0)), depth, valid, T))
    state = _array(msg, "observation/state", 1, np.float32)
    ee = _array(msg, "observation/ee_pose", 2, np.float64, (7,)) if "observation/ee_pose" in msg else None
    prompt = msg.get("prompt", "")
    state_names = msg.get("observation/state_names", [])
    mods = msg.get(MODALITIES_KEY, [])
    if not isinstance(prompt, str) or not isinstance(state_names, list) or not isinstance(mods, list):
        raise ProtocolError("prompt must be a string, observation/state_names and modalities lists")
    obs = Observation(stamp_s=float(msg.get("observation/stamp_s", 0.0)), cameras=cams, proprio=state,
                      instruction=prompt, ee_pose=ee, proprio_names=[str(n) for n in state_names])
    return obs, tuple(str(m) for m in mods), bool(msg.get(EPISODE_START_KEY, False))


def encode_chunk(chunk: ActionChunk, rotation_ref_quat_xyzw) -> dict:
    """An ActionChunk -> a reply: openpi's `actions` (T, 7 * arms) plus the chunk's exact fields."""
    raw = poses_to_actions(chunk.position_m, chunk.quat_xyzw, chunk.gripper, rotation_ref_quat_xyzw)
    return {"actions": raw.reshape(chunk.horizon, -1), "position_m": np.asarray(chunk.position_m, np.float64),
            "quat_xyzw": np.asarray(chunk.quat_xyzw, np.float64), "gripper": np.asarray(chunk.gripper, np.float64),
            "dt_s": float(chunk.dt_s), "reference": chunk.reference, "arm_names": list(chunk.arm_names),
            "modalities": list(chunk.modalities), "method": chunk.method, "policy_name": chunk.policy_name}


def _finite(name: str, a: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        raise ProtocolError(f"reply {name}: {int(np.size(a) - np.isfinite(a).sum())} non-finite values (NaN/inf)")
    return a


def decode_chunk(reply, cfg: RemoteConfig, stamp_s: float, latency_s: float, method: str) -> ActionChunk:
    """A reply -> an ActionChunk stamped with the observation time; a wrong shape, a wrong arm set or a NaN is
    refused with the reason (ProtocolError)."""
    if not isinstance(reply, dict):
        raise ProtocolError(f"reply: expected a map, got {type(reply).__name__}")
    A = len(cfg.arm_names)
    if "position_m" in reply:  # a vla_ros server: the chunk itself
        pos, quat, grip = (reply.get(k) for k in ("position_m", "quat_xyzw", "gripper"))
        for name, val, last in (("position_m", pos, (A, 3)), ("quat_xyzw", quat, (A, 4)), ("gripper", grip, (A,))):
            if not isinstance(val, np.ndarray) or val.ndim != len(last) + 1 or val.shape[1:] != last:
                raise ProtocolError(f"reply {name}: shape {getattr(val, 'shape', None)}, expected (T, *{last})")
            _finite(name, val)
        if reply.get("arm_names", cfg.arm_names) != list(cfg.arm_names):
            raise ProtocolError(f"reply arm_names {reply.get('arm_names')} != {cfg.arm_names}")
        if not pos.shape[0] == quat.shape[0] == grip.shape[0]:
            raise ProtocolError(f"reply: horizons differ {pos.shape[0]}, {quat.shape[0]}, {grip.shape[0]}")
        reference = reply.get("reference", cfg.action_reference)
        modalities = tuple(reply.get("modalities", ()))
        pos, quat, grip = pos.astype(np.float64), quat.astype(np.float64), grip.astype(np.float64)
        dt_s = float(reply.get("dt_s", cfg.dt_s))
    else:  # a foreign server: openpi's `actions` in the project's layout
        actions = reply.get("actions")
        if not isinstance(actions, np.ndarray) or actions.ndim != 2 or actions.shape[1] != 7 * A:
            raise ProtocolError(f"reply actions: shape {getattr(actions, 'shape', None)}, expected (T, {7 * A}) "
                                f"(7 per arm for {cfg.arm_names})")
        if actions.dtype.kind not in "biuf" or actions.shape[0] < 1:
            raise ProtocolError(f"reply actions: dtype {actions.dtype} / {actions.shape[0]} steps")
        _finite("actions", actions)
        pos, quat, grip = actions_to_poses(actions.reshape(-1, A, 7), cfg.rotation_ref_quat_xyzw)
        reference, modalities, dt_s = cfg.action_reference, (), cfg.dt_s
    if not math.isfinite(dt_s) or dt_s <= 0 or reference not in REFERENCES:
        raise ProtocolError(f"reply dt_s {dt_s} / reference {reference!r} invalid")
    return ActionChunk(stamp_s=stamp_s, dt_s=dt_s, frame_id="", arm_names=list(cfg.arm_names), position_m=pos,
                       quat_xyzw=quat, gripper=grip, reference=reference, modalities=modalities,
                       method=str(reply.get("method", method)), policy_name=str(reply.get("policy_name", cfg.name)),
                       inference_latency_s=latency_s)
