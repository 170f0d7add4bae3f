"""The one way sensor data becomes an Observation: the live frontend (vla_ros/ros/observation_frontend.py), the
bag reader (vla_ros/data/bag_observations.py) and the simulator (vla_ros/sim/env.py) all feed an ObservationFeed,
so offline evaluation, simulation and the robot see observations built by the same code.

It takes messages by their fields (rclpy's and rosbags' messages have the same field names, so either works) or
plain values, converts and checks them (image encodings, CameraInfo, joint names, end-effector pose), loads the
calibration file, refreshes the extrinsics from a transform source before each assembly, and hands everything
to the time-synchronising ObservationAssembler. Bad input raises ValueError (or TransformError) naming the
field; nothing is half-applied. Thread-safe: conversions run outside the lock, only the assembler is guarded.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from vla_ros.core.calibration import load_calibration
from vla_ros.core.camera import Intrinsics, intrinsics_from_fields
from vla_ros.core.constants import UNIT_QUAT_TOL
from vla_ros.core.image import compressed_to_array, depth_and_validity, image_to_array
from vla_ros.core.joints import JointMapper
from vla_ros.core.sync import ObservationAssembler, ObservationConfig
from vla_ros.core.tf_tree import TransformError
from vla_ros.core.types import Observation

SourceKind = Literal["rgb", "depth", "camera_info", "joints", "ee_pose", "instruction"]


class TransformSource(Protocol):
    def lookup(self, target: str, source: str, now_s: float | None = None, max_age_s: float = math.inf
               ) -> tuple[np.ndarray, float | None]: ...


@dataclass(frozen=True)
class Source:
    """One input of an observation: its kind, its camera (None for the robot-wide ones) and its topic."""

    kind: SourceKind
    camera: str | None
    topic: str

    @property
    def name(self) -> str:
        """'rgb/front', 'camera_info/front', 'joints', ... (the key of per-source counters)."""
        return f"{self.kind}/{self.camera}" if self.camera else self.kind


def header_stamp_s(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def pose_fields_to_array(pose) -> np.ndarray:
    """geometry_msgs/Pose fields -> (7,) xyz + quaternion xyzw."""
    p, q = pose.position, pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w], dtype=np.float64)


def check_ee_pose(pose: np.ndarray) -> None:
    """ValueError unless `pose` (7,) or (arms, 7) is finite with unit quaternions (within UNIT_QUAT_TOL)."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1:] != (7,):
        raise ValueError(f"pose: expected (7,) or (arms, 7) xyz + quaternion xyzw, got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise ValueError("pose: non-finite end-effector pose")
    norm = np.linalg.norm(pose[..., 3:], axis=-1)
    if np.any(np.abs(norm - 1.0) > UNIT_QUAT_TOL):
        raise ValueError(f"pose.orientation: not a unit quaternion (norm {float(np.ravel(norm)[0]):.3f})")


class ObservationFeed:
    """Feed sensor data in any order; `assemble(now_s)` gives the Observation at `now_s`.

    Args:
        config: which sources make an observation.
        tf: makes the transform source the extrinsics come from (a TfListener live, a TransformTree for a bag);
            called only when no calibration file gives them. None: extrinsics only from calibration or
            `set_extrinsics` (the simulator).
        warn: called with a line for each camera whose transform cannot be looked up at assembly.
    """

    def __init__(self, config: ObservationConfig, tf: Callable[[], TransformSource] | None = None,
                 warn: Callable[[str], None] | None = None):
        self.config = config
        self.assembler = ObservationAssembler(config)
        self.joints = JointMapper(config.joint_names) if config.joint_names else None
        self.primary = config.cameras[0]
        self.frames = {c.name: c.frame_id for c in config.cameras}
        self._warn = warn
        self._lock = threading.Lock()
        calibration = load_calibration(config.calibration_file)[1] if config.calibration_file else {}
        for name, T in calibration.items():
            if name in self.assembler.cameras:
                self.assembler.set_extrinsics(name, T)
        self.calibrated = bool(calibration)
        self.tf = tf() if tf is not None and not self.calibrated else None

    # --- what feeds it ------------------------------------------------------------------------------
    def sources(self) -> list[Source]:
        """Every input of the configured observation, with its topic."""
        cfg, out = self.config, []
        for cam in cfg.cameras:
            out += [Source("rgb", cam.name, cam.rgb_topic), Source("camera_info", cam.name, cam.info_topic)]
            if cam.depth_topic:
                out.append(Source("depth", cam.name, cam.depth_topic))
        if self.joints is not None:
            out.append(Source("joints", None, cfg.joint_topic))
        if cfg.ee_pose_topic:
            out.append(Source("ee_pose", None, cfg.ee_pose_topic))
        if cfg.instruction_topic:
            out.append(Source("instruction", None, cfg.instruction_topic))
        return out

    def completes_frame(self, source: Source) -> bool:
        """Whether a message of `source` completes a primary frame: its depth when it has depth, else its RGB."""
        return source.camera == self.primary.name and source.kind == ("depth" if self.primary.depth_topic else "rgb")

    def add_message(self, source: Source, msg) -> None:
        """A message of `source` (fields as in sensor_msgs/geometry_msgs/std_msgs)."""
        if source.kind == "rgb":
            self.add_image_msg(source.camera, msg)
        elif source.kind == "depth":
            self.add_depth_msg(source.camera, msg)
        elif source.kind == "camera_info":
            self.add_camera_info(source.camera, intrinsics_from_fields(msg.k, msg.d, msg.width, msg.height,
                                                                       msg.distortion_model))
        elif source.kind == "joints":
            self.add_joint_state(header_stamp_s(msg.header), msg.name, msg.position)
        elif source.kind == "ee_pose":
            self.add_ee_pose(header_stamp_s(msg.header), pose_fields_to_array(msg.pose))
        else:
            self.set_instruction(msg.data)

    # --- messages -----------------------------------------------------------------------------------
    def add_image_msg(self, camera: str, msg) -> None:
        """sensor_msgs/Image or CompressedImage (told apart by its `format` field)."""
        if hasattr(msg, "format"):
            rgb = compressed_to_array(msg.format, msg.data)
        else:
            rgb = image_to_array(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)
        if rgb.ndim != 3:
            raise ValueError(f"encoding: {getattr(msg, 'encoding', '?')!r} is not a colour encoding")
        self.add_image(camera, header_stamp_s(msg.header), rgb, msg.header.frame_id)

    def add_depth_msg(self, camera: str, msg) -> None:
        depth_m, valid = depth_and_validity(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian),
                                            msg.data)
        self.add_depth(camera, header_stamp_s(msg.header), depth_m, valid)

    # --- plain values -------------------------------------------------------------------------------
    def _camera(self, camera: str) -> str:
        if camera not in self.frames:
            raise ValueError(f"camera {camera!r}: not in the observation config; cameras: {sorted(self.frames)}")
        return camera

    def add_image(self, camera: str, stamp: float, rgb: np.ndarray, frame_id: str = "") -> None:
        """(H, W, 3) uint8 RGB; `frame_id` names the camera's frame when the config does not."""
        with self._lock:
            self.assembler.add_image(self._camera(camera), stamp, rgb)
        if not self.frames.get(camera):  # recorded once the image is accepted
            self.frames[camera] = frame_id

    def add_depth(self, camera: str, stamp: float, depth_m: np.ndarray, valid: np.ndarray | None = None) -> None:
        with self._lock:
            self.assembler.add_depth(self._camera(camera), stamp, depth_m, valid)

    def add_camera_info(self, camera: str, intrinsics: Intrinsics) -> None:
        with self._lock:
            self.assembler.add_camera_info(self._camera(camera), intrinsics)

    def add_joint_state(self, stamp: float, names, positions) -> None:
        """Positions named `names`, mapped into the configured joint order (missing or NaN joints are named)."""
        if self.joints is None:
            raise ValueError("joint state: the observation config names no joint_names")
        q = self.joints.map(names, positions)
        with self._lock:
            self.assembler.add_joint_state(stamp, q)

    def add_ee_pose(self, stamp: float, pose: np.ndarray) -> None:
        """(7,) xyz + quaternion xyzw in the base frame; non-finite values or a non-unit quaternion are refused."""
        check_ee_pose(pose)
        with self._lock:
            self.assembler.add_ee_pose(stamp, pose)

    def set_instruction(self, text: str) -> None:
        with self._lock:
            self.assembler.set_instruction(text)

    def set_extrinsics(self, camera: str, T_base_camera: np.ndarray | None, stamp: float | None = None) -> None:
        """The camera's pose in the base frame, given directly (stamp None = static)."""
        with self._lock:
            self.assembler.set_extrinsics(camera, T_base_camera, stamp)

    # --- assembly -----------------------------------------------------------------------------------
    def assemble(self, now_s: float) -> Observation:
        """The observation at `now_s`, with the extrinsics looked up afresh; a camera whose transform cannot be
        looked up has none (never a stale pose) and its reason is appended."""
        with self._lock:
            tf_errors = self._refresh_extrinsics(now_s) if self.tf is not None else []
            obs = self.assembler.assemble(now_s)
        obs.reasons.extend(f"extrinsics {name!r}: {exc}" for name, exc in tf_errors)
        if self._warn is not None:
            for _, exc in tf_errors:
                self._warn(f"tf: {exc}")
        return obs

    def _refresh_extrinsics(self, now_s: float) -> list[tuple[str, TransformError]]:
        errors = []
        for cam in self.config.cameras:
            frame = self.frames.get(cam.name)
            if not frame:
                continue
            try:
                T, stamp = self.tf.lookup(self.config.base_frame, frame, now_s, self.config.max_age.extrinsics_s)
                self.assembler.set_extrinsics(cam.name, T, stamp)
            except TransformError as exc:
                self.assembler.set_extrinsics(cam.name, None)
                errors.append((cam.name, exc))
        return errors
