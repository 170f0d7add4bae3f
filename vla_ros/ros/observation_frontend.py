"""ROS shell around ObservationFeed (vla_ros/core/observation_feed.py, which the bag reader and the simulator feed
too): subscriptions, the tf listener, guarded callbacks, delivery tracking.

Bad input (wrong encoding, short data, NaN joints, empty or implausible K, ...) is counted per source and
logged per cause (each kind of fault gets its own first line, then at most one every few seconds); no exception
escapes a callback. `latest(now_s)` is thread-safe and may be called from
the inference worker while callbacks keep running.
"""
from __future__ import annotations

import threading
from collections import Counter

from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from std_msgs.msg import String

from vla_ros.core.delivery import DeliveryMonitor
from vla_ros.core.log_causes import CauseThrottle
from vla_ros.core.observation_feed import ObservationFeed, Source
from vla_ros.core.sync import ObservationConfig
from vla_ros.core.types import Observation
from vla_ros.ros import qos

LOG_EVERY_S = 5.0
MSG_TYPES = {"rgb": Image, "depth": Image, "camera_info": CameraInfo, "joints": JointState, "ee_pose": PoseStamped,
             "instruction": String}


class ObservationFrontend:
    def __init__(self, node, config: ObservationConfig, callback_group=None, use_tf: bool = True):
        self.node, self.config = node, config
        self.rejected: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.last_errors: dict[str, str] = {}
        self._log = CauseThrottle(LOG_EVERY_S)
        self.delivery = DeliveryMonitor()  # camera frames received vs published (publisher sequence numbers)
        self._delivery_lock = threading.Lock()
        # Set when the primary camera's newest frame is complete (its depth too, when it has depth): the policy
        # worker waits on it, so it picks a frame as it lands instead of one up to a camera period old.
        self.frame_ready = threading.Event()
        self.feed = ObservationFeed(config, self._tf_listener(callback_group) if use_tf else None, self.warn)
        compressed = {c.name for c in config.cameras if c.compressed}
        for source in self.feed.sources():
            msg_type = CompressedImage if source.kind == "rgb" and source.camera in compressed else \
                MSG_TYPES[source.kind]
            node.create_subscription(msg_type, source.topic, self._guard(source),
                                     qos.LATCHED if source.kind == "instruction" else qos.SENSOR,
                                     callback_group=callback_group)

    def _tf_listener(self, callback_group):
        def make():
            from vla_ros.ros.tf import TfListener

            return TfListener(self.node, callback_group)
        return make

    @property
    def assembler(self):
        return self.feed.assembler

    def _guard(self, source: Source):
        name, track, completes = source.name, source.kind in ("rgb", "depth"), self.feed.completes_frame(source)

        def callback(msg, info):
            try:
                self.feed.add_message(source, msg)
                self.received[name] += 1
                if completes:
                    self.frame_ready.set()
            except Exception as exc:  # bad input must never take the node down
                reason = f"{name}: {exc}"
                self.rejected[name] += 1
                self.last_errors[name] = reason
                self.warn(f"rejected {reason}")
            if track:
                self._track_delivery(name, msg, info)
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

    def set_instruction(self, text: str) -> None:
        self.feed.set_instruction(text)

    def latest(self, now_s: float) -> Observation:
        return self.feed.assemble(now_s)

    def stats(self) -> dict:
        with self._delivery_lock:
            delivery = {k: round(v["fraction"], 3) for k, v in self.delivery.report().items()}
        return {"received": dict(self.received), "rejected": dict(self.rejected), "last_errors": dict(self.last_errors),
                "delivered_fraction": delivery}
