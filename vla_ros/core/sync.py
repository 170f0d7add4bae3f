"""Observation assembly: time-synchronised cameras, depth, joints, end-effector pose, extrinsics, instruction.

Pure logic, fed through ObservationFeed (vla_ros/core/observation_feed.py) by the live frontend, the bag reader
and the simulator alike, so all three see identical observations. Rules:
- the primary camera's newest RGB image sets the observation stamp;
- each camera's depth is matched to its RGB within `slop_s` (approximate time sync);
- joint positions are interpolated AT the image stamp from a short buffer, never "latest";
- every source's age is recorded; a stale or missing *required* source makes the observation invalid,
  an optional one (depth, pose) is dropped; either way `reasons` names the source and the numbers.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.camera import Intrinsics
from vla_ros.core.config import check, check_range
from vla_ros.core.depth import clean_depth
from vla_ros.core.types import CameraObservation, Observation


@dataclass
class CameraConfig:
    """One camera. Args:
    name: short name used in datasets and checkpoints ("front", "wrist").
    rgb_topic / info_topic: sensor_msgs/Image (or CompressedImage if `compressed`) and CameraInfo.
    depth_topic: aligned depth image; empty = no depth for this camera.
    frame_id: optical frame for tf lookups; empty = take it from the image header.
    """

    name: str = "front"
    rgb_topic: str = "/camera/color/image_raw"
    info_topic: str = "/camera/color/camera_info"
    depth_topic: str = ""
    frame_id: str = ""
    compressed: bool = False

    def __post_init__(self):
        check(bool(self.name), "name", self.name, "camera name must not be empty")
        check(self.rgb_topic.startswith("/"), "rgb_topic", self.rgb_topic, "must be an absolute topic")


@dataclass
class MaxAge:
    """Maximum age in seconds of each source, relative to the assembly time (`now`)."""

    rgb_s: float = 0.5
    depth_s: float = 0.5
    joints_s: float = 0.1
    ee_pose_s: float = 0.2
    extrinsics_s: float = 1.0  # dynamic tf only; static transforms never age

    def __post_init__(self):
        for name in ("rgb_s", "depth_s", "joints_s", "ee_pose_s", "extrinsics_s"):
            check_range(name, getattr(self, name), 0.0, 3600.0)


@dataclass
class ObservationConfig:
    """Which sources make an observation, and how fresh they must be.

    Args:
        cameras: cameras in order; the first is primary (its stamp is the observation stamp).
        joint_names: robot joints in the order the policy expects.
        joint_topic / ee_pose_topic / instruction_topic: topics ('' disables the optional ones).
        base_frame: frame of extrinsics and end-effector poses.
        slop_s: max RGB-depth stamp difference for a match.
        joint_buffer_s: how much joint history to keep for interpolation at the image stamp.
        max_age: per-source staleness limits.
        max_future_s: a source stamped more than this ahead of the assembly time (`now`) is refused, named, like a
            stale one (clock skew between the sensor's machine and this one; a future stamp would otherwise look
            fresh for as long as the skew).
        require_depth / require_extrinsics / require_instruction: make those sources mandatory.
        calibration_file: YAML with camera extrinsics, used when the robot has no tf.
        gripper_topic: the gripper's JointState (finger positions; their sum is the opening width), recorded for
            offline evaluation and dataset export ('' = none). gripper_open_width_m: width that counts as 1.0.
    """

    cameras: list[CameraConfig] = field(default_factory=lambda: [CameraConfig()])
    joint_names: list[str] = field(default_factory=list)
    joint_topic: str = "/joint_states"
    ee_pose_topic: str = ""
    instruction_topic: str = "/vla/instruction"
    base_frame: str = "base"
    slop_s: float = 0.05
    joint_buffer_s: float = 1.0
    max_age: MaxAge = field(default_factory=MaxAge)
    max_future_s: float = 0.1
    require_depth: bool = False
    require_extrinsics: bool = False
    require_instruction: bool = True
    calibration_file: str = ""
    gripper_topic: str = ""
    gripper_open_width_m: float = 0.08

    def __post_init__(self):
        check_range("gripper_open_width_m", self.gripper_open_width_m, 1e-3, 1.0)
        check(len(self.cameras) > 0, "cameras", self.cameras, "at least one camera is needed")
        names = [c.name for c in self.cameras]
        check(len(set(names)) == len(names), "cameras", names, "camera names must be unique")
        check_range("slop_s", self.slop_s, 0.0, 1.0)
        check_range("max_future_s", self.max_future_s, 0.0, 60.0)
        check_range("joint_buffer_s", self.joint_buffer_s, 0.01, 60.0)
        check(len(set(self.joint_names)) == len(self.joint_names), "joint_names", self.joint_names,
              "joint names must be unique")


class _Series:
    """Stamped samples kept sorted by stamp, bounded in count."""

    def __init__(self, maxlen: int):
        self.stamps: deque[float] = deque(maxlen=maxlen)
        self.values: deque = deque(maxlen=maxlen)

    def add(self, stamp_s: float, value) -> None:
        if self.stamps and stamp_s < self.stamps[-1]:  # out of order: insert (rare), keep sorted
            i = bisect.bisect(list(self.stamps), stamp_s)
            stamps, values = list(self.stamps), list(self.values)
            stamps.insert(i, stamp_s)
            values.insert(i, value)
            self.stamps, self.values = deque(stamps, self.stamps.maxlen), deque(values, self.values.maxlen)
            return
        self.stamps.append(stamp_s)
        self.values.append(value)

    def latest(self):
        return (self.stamps[-1], self.values[-1]) if self.stamps else (None, None)

    def nearest(self, stamp_s: float):
        if not self.stamps:
            return None, None
        i = int(np.argmin(np.abs(np.asarray(self.stamps) - stamp_s)))
        return self.stamps[i], self.values[i]

    def prune_before(self, stamp_s: float) -> None:
        while len(self.stamps) > 2 and self.stamps[1] < stamp_s:
            self.stamps.popleft()
            self.values.popleft()


class ObservationAssembler:
    """Collects stamped sensor data and assembles `Observation`s. Not thread-safe: one owner feeds it."""

    def __init__(self, config: ObservationConfig, rgb_buffer: int = 4, depth_buffer: int = 8):
        self.config = config
        self.cameras = {c.name: c for c in config.cameras}
        self._rgb = {c: _Series(rgb_buffer) for c in self.cameras}
        self._depth = {c: _Series(depth_buffer) for c in self.cameras}
        self._info: dict[str, Intrinsics] = {}
        self._extrinsics: dict[str, tuple[np.ndarray, float | None]] = {}
        self._joints = _Series(4096)
        self._ee = _Series(256)
        self.instruction = ""

    # --- feeding ------------------------------------------------------------------------------------
    def _camera(self, name: str) -> str:
        if name not in self.cameras:
            raise KeyError(f"camera {name!r} is not configured (have {list(self.cameras)})")
        return name

    def add_image(self, camera: str, stamp_s: float, rgb: np.ndarray) -> None:
        self._rgb[self._camera(camera)].add(stamp_s, rgb)

    def add_depth(self, camera: str, stamp_s: float, depth_m: np.ndarray, valid: np.ndarray | None = None) -> None:
        if valid is None:
            depth_m, valid = clean_depth(depth_m)
        self._depth[self._camera(camera)].add(stamp_s, (depth_m, valid))

    def add_camera_info(self, camera: str, intrinsics: Intrinsics) -> None:
        self._info[self._camera(camera)] = intrinsics

    def add_joint_state(self, stamp_s: float, positions: np.ndarray) -> None:
        self._joints.add(stamp_s, np.asarray(positions, dtype=np.float64))
        self._joints.prune_before(stamp_s - self.config.joint_buffer_s)

    def add_ee_pose(self, stamp_s: float, pose: np.ndarray) -> None:
        """pose: (A, 7) or (7,) xyz + quaternion xyzw in the base frame."""
        self._ee.add(stamp_s, np.atleast_2d(np.asarray(pose, dtype=np.float64)))

    def set_instruction(self, text: str) -> None:
        self.instruction = text.strip()

    def set_extrinsics(self, camera: str, T_base_camera: np.ndarray | None, stamp_s: float | None = None) -> None:
        """Camera pose in the base frame; `stamp_s=None` marks a static transform. None removes it."""
        if T_base_camera is None:
            self._extrinsics.pop(self._camera(camera), None)
        else:
            self._extrinsics[self._camera(camera)] = (np.asarray(T_base_camera, dtype=np.float64), stamp_s)

    # --- assembly -----------------------------------------------------------------------------------
    def joints_at(self, stamp_s: float) -> tuple[np.ndarray | None, float]:
        """Joint positions linearly interpolated at `stamp_s`, and the distance to the nearest sample."""
        stamps = self._joints.stamps
        if not stamps:
            return None, math.inf
        s = np.fromiter(stamps, float, len(stamps))
        i = int(np.searchsorted(s, stamp_s))
        if i == 0:
            return self._joints.values[0], s[0] - stamp_s
        if i == len(s):
            return self._joints.values[-1], stamp_s - s[-1]
        t0, t1 = s[i - 1], s[i]
        w = 0.0 if t1 == t0 else (stamp_s - t0) / (t1 - t0)
        q = (1 - w) * self._joints.values[i - 1] + w * self._joints.values[i]
        return q, min(stamp_s - t0, t1 - stamp_s)

    def assemble(self, now_s: float) -> Observation:
        cfg = self.config
        reasons: list[str] = []
        ages: dict[str, float] = {}
        valid = True

        def fail(msg: str, required: bool = True) -> None:
            nonlocal valid
            reasons.append(msg)
            valid = valid and not required

        primary = cfg.cameras[0].name
        ref_stamp = self._reference_stamp(cfg.cameras[0])
        if ref_stamp is None:
            return Observation(stamp_s=math.nan, cameras=[], proprio=np.zeros(0, np.float32),
                               instruction=self.instruction, valid=False,
                               reasons=[f"rgb {primary!r} missing: no image received"])
        cams = [c for c in (self._camera_at(cam, ref_stamp, now_s, ages, fail) for cam in cfg.cameras)
                if c is not None]
        proprio = self._proprio_at(ref_stamp, now_s, ages, fail) if cfg.joint_names else np.zeros(0, np.float32)
        ee = self._ee_pose_at(ref_stamp, ages, fail) if cfg.ee_pose_topic else None
        if cfg.require_instruction and not self.instruction:
            fail("instruction missing: nothing received on the instruction topic or parameter")
        return Observation(stamp_s=ref_stamp, cameras=cams, proprio=proprio, instruction=self.instruction,
                           ee_pose=ee, ages_s=ages, valid=valid and len(cams) == len(cfg.cameras), reasons=reasons,
                           proprio_names=list(cfg.joint_names) if proprio.size else [])

    def _camera_at(self, cam: CameraConfig, ref_stamp: float, now_s: float, ages: dict, fail
                   ) -> CameraObservation | None:
        """The camera's image nearest the reference stamp with its intrinsics, depth and extrinsics; None (and a
        reason) when it has no image or no matching camera_info."""
        cfg, primary = self.config, self.config.cameras[0].name
        stamp, rgb = self._rgb[cam.name].nearest(ref_stamp)
        if stamp is None:
            fail(f"rgb {cam.name!r} missing: no image received")
            return None
        ages[f"rgb/{cam.name}"] = now_s - stamp
        if stamp - now_s > cfg.max_future_s:
            fail(f"rgb {cam.name!r} stamped {stamp - now_s:.3f} s in the future > max {cfg.max_future_s} s "
                 "(clock skew?)")
        elif now_s - stamp > cfg.max_age.rgb_s:
            fail(f"rgb {cam.name!r} stale: {now_s - stamp:.3f} s > max {cfg.max_age.rgb_s} s")
        if cam.name != primary and abs(stamp - ref_stamp) > cfg.slop_s:
            gap = abs(stamp - ref_stamp)
            fail(f"rgb {cam.name!r} out of sync with {primary!r}: {gap:.3f} s > slop {cfg.slop_s} s")
        info = self._info.get(cam.name)
        if info is None:
            fail(f"camera_info {cam.name!r} missing")
            return None
        if (info.height, info.width) != rgb.shape[:2]:
            fail(f"camera_info {cam.name!r} is {info.width}x{info.height} but the image is "
                 f"{rgb.shape[1]}x{rgb.shape[0]}")
            return None
        obs_cam = CameraObservation(name=cam.name, rgb=rgb, K=info.K, stamp_s=stamp)
        if cam.depth_topic:
            self._attach_depth(obs_cam, now_s, ages, fail)
        self._attach_extrinsics(obs_cam, now_s, ages, fail)
        return obs_cam

    def _proprio_at(self, ref_stamp: float, now_s: float, ages: dict, fail) -> np.ndarray:
        """Joint positions interpolated at the reference stamp (empty, and a reason, when none arrived)."""
        cfg = self.config
        q, gap = self.joints_at(ref_stamp)
        if q is None:
            fail("joints missing: no joint_states received")
            return np.zeros(0, np.float32)
        ages["joints"] = gap
        newest, _ = self._joints.latest()
        ages["joints_latest"] = now_s - newest
        if newest - now_s > cfg.max_future_s:
            fail(f"joints stamped {newest - now_s:.3f} s in the future > max {cfg.max_future_s} s "
                 "(clock skew?)")
        elif gap > cfg.max_age.joints_s:
            fail(f"joints stale: nearest sample {gap:.3f} s from the image stamp > max {cfg.max_age.joints_s} s")
        return q.astype(np.float32)

    def _ee_pose_at(self, ref_stamp: float, ages: dict, fail) -> np.ndarray | None:
        """The end-effector pose nearest the reference stamp, None (and a reason) when missing or too far."""
        stamp, pose = self._ee.nearest(ref_stamp)
        if stamp is None:
            fail("ee_pose missing: no end-effector pose received")
            return None
        max_s = self.config.max_age.ee_pose_s
        ages["ee_pose"] = abs(ref_stamp - stamp)
        if abs(ref_stamp - stamp) > max_s:
            fail(f"ee_pose stale: {abs(ref_stamp - stamp):.3f} s from the image stamp > max {max_s} s")
            return None
        return pose

    def _reference_stamp(self, cam: CameraConfig) -> float | None:
        """Newest primary RGB stamp that already has its depth (approximate time sync: a depth image usually
        lands a few ms after its RGB); the newest RGB when none has, or when the camera has no depth."""
        rgb = self._rgb[cam.name]
        if not rgb.stamps:
            return None
        depth = self._depth[cam.name].stamps
        if cam.depth_topic and depth:
            d = np.fromiter(depth, float, len(depth))
            for stamp in reversed(rgb.stamps):
                if np.min(np.abs(d - stamp)) <= self.config.slop_s:
                    return stamp
        return rgb.stamps[-1]

    def _attach_depth(self, cam: CameraObservation, now_s: float, ages: dict, fail) -> None:
        cfg = self.config
        series = self._depth[cam.name]
        stamp, value = series.nearest(cam.stamp_s)
        if stamp is None:
            fail(f"depth {cam.name!r} missing: no depth image received", cfg.require_depth)
            return
        ages[f"depth/{cam.name}"] = now_s - stamp
        if stamp - now_s > cfg.max_future_s:
            fail(f"depth {cam.name!r} stamped {stamp - now_s:.3f} s in the future > max {cfg.max_future_s} s "
                 "(clock skew?)", cfg.require_depth)
            return
        if now_s - stamp > cfg.max_age.depth_s:
            fail(f"depth {cam.name!r} stale: {now_s - stamp:.3f} s > max {cfg.max_age.depth_s} s", cfg.require_depth)
            return
        if abs(stamp - cam.stamp_s) > cfg.slop_s:
            fail(f"depth {cam.name!r} unmatched: nearest depth {abs(stamp - cam.stamp_s):.3f} s from rgb > slop "
                 f"{cfg.slop_s} s", cfg.require_depth)
            return
        depth_m, valid = value
        if depth_m.shape != cam.rgb.shape[:2]:
            fail(f"depth {cam.name!r} is {depth_m.shape[::-1]} but rgb is {cam.rgb.shape[1::-1]}: only depth aligned "
                 "to colour is supported", cfg.require_depth)
            return
        cam.depth_m, cam.depth_valid = depth_m, valid

    def _attach_extrinsics(self, cam: CameraObservation, now_s: float, ages: dict, fail) -> None:
        cfg = self.config
        entry = self._extrinsics.get(cam.name)
        if entry is None:
            if cfg.require_extrinsics:
                fail(f"extrinsics {cam.name!r} missing: no transform {cfg.base_frame} <- camera")
            return
        T, stamp = entry
        if stamp is not None:
            ages[f"extrinsics/{cam.name}"] = now_s - stamp
            if stamp - now_s > cfg.max_future_s:
                fail(f"extrinsics {cam.name!r} stamped {stamp - now_s:.3f} s in the future > max {cfg.max_future_s} s",
                     cfg.require_extrinsics)
                return
            if now_s - stamp > cfg.max_age.extrinsics_s:
                fail(f"extrinsics {cam.name!r} stale: {now_s - stamp:.3f} s > max {cfg.max_age.extrinsics_s} s",
                     cfg.require_extrinsics)
                return
        cam.T_base_camera = T
