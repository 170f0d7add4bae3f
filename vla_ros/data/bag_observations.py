"""Bag messages -> Observations through the converters and the assembler the live observation node uses
(vla_ros.core.image / camera / joints / sync, and the tf tree), so offline and online see identical observations.

rosbags' deserialized messages have the same field names as rclpy's. One Observation is emitted per primary
camera frame, once that frame is complete (its depth arrived when the camera has a depth topic), assembled at
the frame's stamp; frames whose observation is invalid (a required source missing or stale) are counted in
`rejected` with the reason.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import numpy as np

from vla_ros.core.calibration import load_calibration
from vla_ros.core.camera import intrinsics_from_fields
from vla_ros.core.constants import UNIT_QUAT_TOL
from vla_ros.core.image import compressed_to_array, depth_and_validity, image_to_array
from vla_ros.core.joints import JointMapper
from vla_ros.core.sync import ObservationAssembler, ObservationConfig
from vla_ros.core.tf_tree import TransformError, TransformTree
from vla_ros.core.transforms import pose_to_matrix
from vla_ros.core.types import Observation

TF_TOPICS = ("/tf_static", "/tf")


def _stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _pose7(p) -> np.ndarray:
    return np.array([p.position.x, p.position.y, p.position.z, p.orientation.x, p.orientation.y, p.orientation.z,
                     p.orientation.w], dtype=np.float64)


class BagObservations:
    """Feed (topic, t_ns, msg) in time order; `feed` returns an Observation when a primary frame completes."""

    def __init__(self, cfg: ObservationConfig):
        self.cfg = cfg
        self.asm = ObservationAssembler(cfg)
        self.joints = JointMapper(cfg.joint_names) if cfg.joint_names else None
        self.tree = TransformTree()
        self.frames = {c.name: c.frame_id for c in cfg.cameras}
        self.calibrated = False
        if cfg.calibration_file:
            _, calib = load_calibration(cfg.calibration_file)
            for name, T in calib.items():
                if name in self.asm.cameras:
                    self.asm.set_extrinsics(name, T)
            self.calibrated = bool(calib)
        self.by_topic: dict[str, tuple[str, str | None]] = {}
        for c in cfg.cameras:
            self.by_topic[c.rgb_topic] = ("rgb", c.name)
            self.by_topic[c.info_topic] = ("info", c.name)
            if c.depth_topic:
                self.by_topic[c.depth_topic] = ("depth", c.name)
        if self.joints is not None:
            self.by_topic[cfg.joint_topic] = ("joints", None)
        if cfg.instruction_topic:
            self.by_topic[cfg.instruction_topic] = ("instruction", None)
        if cfg.ee_pose_topic:
            self.by_topic[cfg.ee_pose_topic] = ("ee", None)
        if not self.calibrated:
            self.by_topic.update({t: (t.strip("/"), None) for t in TF_TOPICS})
        self.primary = cfg.cameras[0]
        self.rejected: Counter[str] = Counter()  # "<source>: <reason>" -> count
        self.emitted = 0

    def topics(self) -> list[str]:
        return list(self.by_topic)

    def required_topics(self) -> list[str]:
        """Topics without which no observation can be valid."""
        out = [self.primary.rgb_topic, self.primary.info_topic]
        if self.joints is not None:
            out.append(self.cfg.joint_topic)
        if self.cfg.require_instruction and self.cfg.instruction_topic:
            out.append(self.cfg.instruction_topic)
        if self.cfg.require_depth and self.primary.depth_topic:
            out.append(self.primary.depth_topic)
        return out

    def feed(self, topic: str, msg) -> Observation | None:
        kind, cam = self.by_topic.get(topic, (None, None))
        if kind is None:
            return None
        try:
            return self._feed(kind, cam, msg)
        except (ValueError, TransformError) as exc:  # the live frontend rejects the same inputs
            self.rejected[f"{kind}: {str(exc)[:120]}"] += 1
            return None

    def _feed(self, kind: str, cam: str | None, msg) -> Observation | None:
        if kind == "rgb":
            if hasattr(msg, "format"):  # CompressedImage
                rgb = compressed_to_array(msg.format, msg.data)
            else:
                rgb = image_to_array(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)
            if rgb.ndim != 3:
                raise ValueError(f"encoding {getattr(msg, 'encoding', '?')!r} is not a colour encoding")
            self.frames[cam] = self.frames[cam] or msg.header.frame_id
            self.asm.add_image(cam, _stamp(msg.header), rgb)
            if cam == self.primary.name and not self.primary.depth_topic:
                return self._emit(_stamp(msg.header))
        elif kind == "depth":
            d, v = depth_and_validity(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)
            self.asm.add_depth(cam, _stamp(msg.header), d, v)
            if cam == self.primary.name:
                return self._emit(_stamp(msg.header))
        elif kind == "info":
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
            pose = _pose7(msg.pose)
            if not np.isfinite(pose).all():
                raise ValueError("pose: non-finite end-effector pose")
            norm = math.sqrt(float(np.sum(pose[3:] ** 2)))
            if abs(norm - 1.0) > UNIT_QUAT_TOL:
                raise ValueError(f"pose.orientation: not a unit quaternion (norm {norm:.3f})")
            self.asm.add_ee_pose(_stamp(msg.header), pose)
        return None

    def _emit(self, now_s: float) -> Observation | None:
        if not self.calibrated:
            for c in self.cfg.cameras:
                frame = self.frames.get(c.name)
                if not frame:
                    continue
                try:
                    T, stamp = self.tree.lookup(self.cfg.base_frame, frame, now_s, self.cfg.max_age.extrinsics_s)
                    self.asm.set_extrinsics(c.name, T, stamp)
                except TransformError:
                    self.asm.set_extrinsics(c.name, None)  # as live: never keep a stale pose
        obs = self.asm.assemble(now_s)
        if not obs.valid:
            for r in obs.reasons or ["invalid"]:
                self.rejected[f"observation: {r[:120]}"] += 1
            return None
        self.emitted += 1
        return obs


def replay(bag, feeder: BagObservations, extra=None, stride: int = 1) -> Iterator[tuple[int, Observation]]:
    """Observations of `bag` in time order as (t_ns, obs); every `stride`-th valid one. `extra` (e.g.
    RecordedActions) gets its own topics' messages on the way."""
    extra_topics = set(extra.topics()) if extra is not None else set()
    n = 0
    for topic, t_ns, msg in bag.messages(sorted(set(feeder.topics()) | extra_topics)):
        if topic in extra_topics:
            extra.feed(topic, t_ns, msg)
        obs = feeder.feed(topic, msg)
        if obs is not None:
            n += 1
            if (n - 1) % stride == 0:
                yield t_ns, obs
