"""Bag messages -> Observations through the same converters and assembler the live nodes use.

rosbags' deserialized messages carry the same field names as rclpy's, so the functions of
vla_ros.ros.msg_conversions (pure attribute access, no rclpy import at call time) serve both.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from vla_ros.core.camera import intrinsics_from_fields
from vla_ros.core.image import depth_and_validity, image_to_array
from vla_ros.core.joints import JointMapper
from vla_ros.core.sync import ObservationAssembler, ObservationConfig
from vla_ros.core.tf_tree import TransformError, TransformTree
from vla_ros.core.transforms import pose_to_matrix
from vla_ros.core.types import Observation


def _stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _pose7(p) -> np.ndarray:
    return np.array([p.position.x, p.position.y, p.position.z, p.orientation.x, p.orientation.y, p.orientation.z,
                     p.orientation.w])


class BagObservations:
    """Feed bag messages (topic, t_ns, msg) in time order; yields an Observation each time the primary camera's
    image is complete (RGB + depth when configured), plus the recorded command poses for comparison."""

    def __init__(self, cfg: ObservationConfig, command_topic: str = ""):
        self.cfg, self.command_topic = cfg, command_topic
        self.asm = ObservationAssembler(cfg)
        self.joints = JointMapper(cfg.joint_names) if cfg.joint_names else None
        self.tree = TransformTree()
        self.frames = {c.name: c.frame_id for c in cfg.cameras}
        self.by_topic = {}
        for c in cfg.cameras:
            self.by_topic[c.rgb_topic] = ("rgb", c.name)
            self.by_topic[c.info_topic] = ("info", c.name)
            if c.depth_topic:
                self.by_topic[c.depth_topic] = ("depth", c.name)
        self.by_topic.update({cfg.joint_topic: ("joints", None), cfg.instruction_topic: ("instruction", None),
                              "/tf_static": ("tf_static", None), "/tf": ("tf", None)})
        if cfg.ee_pose_topic:
            self.by_topic[cfg.ee_pose_topic] = ("ee", None)
        if command_topic:
            self.by_topic[command_topic] = ("command", None)
        if cfg.gripper_topic:
            self.by_topic[cfg.gripper_topic] = ("gripper", None)
        self.commands: list[tuple[float, np.ndarray]] = []
        self.gripper: list[tuple[float, float]] = []  # (stamp, opening in [0, 1])
        self.rejected: dict[str, int] = {}
        self.primary = cfg.cameras[0]

    def topics(self) -> list[str]:
        return list(self.by_topic)

    def feed(self, topic: str, msg) -> Observation | None:
        kind, cam = self.by_topic.get(topic, (None, None))
        try:
            return self._feed(kind, cam, msg)
        except (ValueError, TransformError) as exc:
            key = f"{kind}:{type(exc).__name__}"
            self.rejected[key] = self.rejected.get(key, 0) + 1
            return None

    def _feed(self, kind, cam, msg) -> Observation | None:
        if kind == "rgb":
            self.asm.add_image(cam, _stamp(msg.header),
                               image_to_array(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian),
                                              msg.data))
            self.frames[cam] = self.frames[cam] or msg.header.frame_id
            return None if self.primary.depth_topic else self._emit(_stamp(msg.header))
        if kind == "depth":
            d, v = depth_and_validity(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)
            self.asm.add_depth(cam, _stamp(msg.header), d, v)
            return self._emit(_stamp(msg.header)) if cam == self.primary.name else None
        if kind == "info":
            self.asm.add_camera_info(cam, intrinsics_from_fields(msg.k, msg.d, msg.width, msg.height,
                                                                 msg.distortion_model))
        elif kind == "joints":
            self.asm.add_joint_state(_stamp(msg.header), self.joints.map(list(msg.name), msg.position))
        elif kind == "instruction":
            self.asm.set_instruction(msg.data)
        elif kind in ("tf_static", "tf"):
            for t in msg.transforms:
                tr, q = t.transform.translation, t.transform.rotation
                self.tree.set_transform(t.header.frame_id, t.child_frame_id,
                                        pose_to_matrix([tr.x, tr.y, tr.z], [q.x, q.y, q.z, q.w]),
                                        None if kind == "tf_static" else _stamp(t.header))
        elif kind == "ee":
            self.asm.add_ee_pose(_stamp(msg.header), _pose7(msg.pose))
        elif kind == "command":
            self.commands.append((_stamp(msg.header), _pose7(msg.pose)))
        elif kind == "gripper":
            width = float(np.sum(np.asarray(msg.position, dtype=float)))
            self.gripper.append((_stamp(msg.header), float(np.clip(width / self.cfg.gripper_open_width_m, 0, 1))))
        return None

    def _emit(self, now_s: float) -> Observation | None:
        for c in self.cfg.cameras:
            frame = self.frames.get(c.name)
            if frame:
                try:
                    T, stamp = self.tree.lookup(self.cfg.base_frame, frame, now_s, self.cfg.max_age.extrinsics_s)
                    self.asm.set_extrinsics(c.name, T, stamp)
                except TransformError:
                    self.asm.set_extrinsics(c.name, None)
        obs = self.asm.assemble(now_s)
        return obs if obs.valid else None


def iterate(bag, feeder: BagObservations) -> Iterator[tuple[int, Observation]]:
    for topic, t_ns, msg in bag.messages(feeder.topics()):
        obs = feeder.feed(topic, msg)
        if obs is not None:
            yield t_ns, obs
