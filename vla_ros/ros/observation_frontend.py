"""ROS shell around ObservationAssembler: subscriptions, tf/calibration extrinsics, guarded callbacks.

Bad input (wrong encoding, short data, NaN joints, empty or implausible K, ...) is counted per source and
logged per cause (each kind of fault gets its own first line, then at most one every few seconds); no exception
escapes a callback. `latest(now_s)` is thread-safe and may be called from
the inference worker while callbacks keep running.
"""
from __future__ import annotations

import math
import threading
from collections import Counter

from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from std_msgs.msg import String

from vla_ros.core.calibration import load_calibration
from vla_ros.core.constants import UNIT_QUAT_TOL
from vla_ros.core.delivery import DeliveryMonitor
from vla_ros.core.image import depth_and_validity
from vla_ros.core.joints import JointMapper
from vla_ros.core.log_causes import CauseThrottle
from vla_ros.core.sync import ObservationAssembler, ObservationConfig
from vla_ros.core.tf_tree import TransformError
from vla_ros.core.types import Observation
from vla_ros.ros import qos
from vla_ros.ros.msg_conversions import (
    camera_info_msg_to_intrinsics,
    compressed_msg_to_array,
    image_msg_to_array,
    pose_msg_to_array,
    stamp_to_s,
)

LOG_EVERY_S = 5.0


class ObservationFrontend:
    def __init__(self, node, config: ObservationConfig, callback_group=None, use_tf: bool = True):
        self.node, self.config = node, config
        self.assembler = ObservationAssembler(config)
        self.joints = JointMapper(config.joint_names) if config.joint_names else None
        self.rejected: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.last_errors: dict[str, str] = {}
        self._log = CauseThrottle(LOG_EVERY_S)
        self.delivery = DeliveryMonitor()  # camera frames received vs published (publisher sequence numbers)
        self._delivery_lock = threading.Lock()
        # Set when the primary camera's newest frame is complete (its depth too, when it has depth): the policy
        # worker waits on it, so it picks a frame as it lands instead of one up to a camera period old.
        self.frame_ready = threading.Event()
        primary = config.cameras[0]
        self._ready_source = f"{'depth' if primary.depth_topic else 'rgb'}/{primary.name}"
        self._lock = threading.Lock()
        self._frames = {c.name: c.frame_id for c in config.cameras}
        self._calibration = {}
        if config.calibration_file:
            base, self._calibration = load_calibration(config.calibration_file)
            for name, T in self._calibration.items():
                if name in self.assembler.cameras:
                    self.assembler.set_extrinsics(name, T)
        self.tf = None
        if use_tf and not self._calibration:
            from vla_ros.ros.tf import TfListener

            self.tf = TfListener(node, callback_group)
        kw = {"callback_group": callback_group}
        for cam in config.cameras:
            if cam.compressed:
                node.create_subscription(CompressedImage, cam.rgb_topic, self._guard(f"rgb/{cam.name}", self._on_rgb,
                                                                                     cam.name), qos.SENSOR, **kw)
            else:
                node.create_subscription(Image, cam.rgb_topic, self._guard(f"rgb/{cam.name}", self._on_rgb, cam.name),
                                         qos.SENSOR, **kw)
            node.create_subscription(CameraInfo, cam.info_topic, self._guard(f"camera_info/{cam.name}", self._on_info,
                                                                             cam.name), qos.SENSOR, **kw)
            if cam.depth_topic:
                node.create_subscription(Image, cam.depth_topic, self._guard(f"depth/{cam.name}", self._on_depth,
                                                                             cam.name), qos.SENSOR, **kw)
        if self.joints is not None:
            node.create_subscription(JointState, config.joint_topic, self._guard("joints", self._on_joints),
                                     qos.SENSOR, **kw)
        if config.ee_pose_topic:
            node.create_subscription(PoseStamped, config.ee_pose_topic, self._guard("ee_pose", self._on_ee),
                                     qos.SENSOR, **kw)
        if config.instruction_topic:
            node.create_subscription(String, config.instruction_topic, self._guard("instruction", self._on_instruction),
                                     qos.LATCHED, **kw)

    def _guard(self, source: str, fn, *args):
        track = source.startswith(("rgb/", "depth/"))

        def callback(msg, info):
            try:
                fn(*args, msg)
                self.received[source] += 1
                if source == self._ready_source:
                    self.frame_ready.set()
            except Exception as exc:  # bad input must never take the node down
                reason = f"{source}: {exc}"
                self.rejected[source] += 1
                self.last_errors[source] = reason
                self.warn(f"rejected {reason}")
            if track:
                self._track_delivery(source, msg, info)
        return callback

    def _track_delivery(self, source: str, msg, info) -> None:
        """Count the frame against its publisher's sequence numbers; every 30 frames of a source, warn (once per
        cause, then every few seconds) about any source that receives less than it is sent."""
        latency = (info["received_timestamp"] - info["source_timestamp"]) * 1e-9 if info["source_timestamp"] else None
        with self._delivery_lock:
            self.delivery.add(source, bytes(info["publisher_gid"]["data"]), info["publication_sequence_number"],
                              len(msg.data), latency)
            lines = self.delivery.warnings() if self.received[source] % 30 == 0 else []
        for line in lines:
            self.warn(line)

    def warn(self, message: str) -> None:
        line = self._log.line(message, self.node.get_clock().now().nanoseconds * 1e-9)
        if line is not None:
            self.node.get_logger().warning(line)

    def _on_rgb(self, camera: str, msg) -> None:
        rgb = compressed_msg_to_array(msg) if isinstance(msg, CompressedImage) else image_msg_to_array(msg)
        if rgb.ndim != 3:
            raise ValueError(f"encoding: {getattr(msg, 'encoding', '?')!r} is not a colour encoding")
        if not self._frames.get(camera):
            self._frames[camera] = msg.header.frame_id
        with self._lock:
            self.assembler.add_image(camera, stamp_to_s(msg.header.stamp), rgb)

    def _on_depth(self, camera: str, msg) -> None:
        depth_m, valid = depth_and_validity(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian),
                                            msg.data)
        with self._lock:
            self.assembler.add_depth(camera, stamp_to_s(msg.header.stamp), depth_m, valid)

    def _on_info(self, camera: str, msg) -> None:
        intr = camera_info_msg_to_intrinsics(msg)
        with self._lock:
            self.assembler.add_camera_info(camera, intr)

    def _on_joints(self, msg) -> None:
        q = self.joints.map(msg.name, msg.position)
        with self._lock:
            self.assembler.add_joint_state(stamp_to_s(msg.header.stamp), q)

    def _on_ee(self, msg) -> None:
        pose = pose_msg_to_array(msg.pose)
        if not all(math.isfinite(v) for v in pose):
            raise ValueError("pose: non-finite end-effector pose")
        norm = math.sqrt(sum(v * v for v in pose[3:]))
        if abs(norm - 1.0) > UNIT_QUAT_TOL:
            raise ValueError(f"pose.orientation: not a unit quaternion (norm {norm:.3f})")
        with self._lock:
            self.assembler.add_ee_pose(stamp_to_s(msg.header.stamp), pose)

    def _on_instruction(self, msg) -> None:
        with self._lock:
            self.assembler.set_instruction(msg.data)

    def set_instruction(self, text: str) -> None:
        with self._lock:
            self.assembler.set_instruction(text)

    def _refresh_extrinsics(self, now_s: float) -> list[str]:
        errors = []
        for cam in self.config.cameras:
            frame = self._frames.get(cam.name)
            if not frame:
                continue
            try:
                T, stamp = self.tf.lookup(self.config.base_frame, frame, now_s, self.config.max_age.extrinsics_s)
                self.assembler.set_extrinsics(cam.name, T, stamp)
            except TransformError as exc:
                self.assembler.set_extrinsics(cam.name, None)  # never keep using a stale pose
                errors.append(f"extrinsics {cam.name!r}: {exc}")
                self.warn(f"tf: {exc}")  # a warning: transient at start-up and after a camera moves
        return errors

    def latest(self, now_s: float) -> Observation:
        with self._lock:
            tf_errors = self._refresh_extrinsics(now_s) if self.tf is not None else []
            obs = self.assembler.assemble(now_s)
        obs.reasons.extend(tf_errors)
        return obs

    def stats(self) -> dict:
        with self._delivery_lock:
            delivery = {k: round(v["fraction"], 3) for k, v in self.delivery.report().items()}
        return {"received": dict(self.received), "rejected": dict(self.rejected), "last_errors": dict(self.last_errors),
                "delivered_fraction": delivery}
