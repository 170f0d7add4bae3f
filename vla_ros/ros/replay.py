"""Publish a rosbag2's messages on their topics with the original timing (rate factor, loop, start offset,
topic filter), so the live nodes can be exercised without `ros2 bag play`.

Stamps: with `restamp` (the default) every header stamp is shifted by (replay start - bag start), so nodes
that check freshness against their clock see live data; relative timing is kept exactly.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import is_dataclass

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from vla_ros.data.bags import Bag, deserialize_cdr

LATCHED_TOPICS = ("/tf_static",)


def message_class(msgtype: str):
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        return None


def _shift(msg, offset_ns: int) -> None:
    """Shift every header stamp (also inside lists, e.g. TFMessage.transforms) by offset_ns."""
    for name in getattr(msg, "__dataclass_fields__", {}):
        value = getattr(msg, name)
        if name == "header" and hasattr(value, "stamp"):
            total = value.stamp.sec * 1_000_000_000 + value.stamp.nanosec + offset_ns
            value.stamp.sec, value.stamp.nanosec = total // 1_000_000_000, total % 1_000_000_000
        elif is_dataclass(value):
            _shift(value, offset_ns)
        elif isinstance(value, list) and value and is_dataclass(value[0]):
            for item in value:
                _shift(item, offset_ns)


class BagReplayer:
    def __init__(self, node, bag_path: str, rate: float = 1.0, loop: bool = False, start_offset_s: float = 0.0,
                 topics: list[str] | None = None, restamp: bool = True):
        self.node, self.bag_path, self.rate, self.loop = node, bag_path, rate, loop
        self.start_offset_ns, self.topics, self.restamp = int(start_offset_s * 1e9), topics, restamp
        self.published = 0
        self.skipped: dict[str, str] = {}
        self.pubs = {}
        with Bag(bag_path) as bag:
            self.skipped.update(bag.skipped)
            for topic, info in bag.topics().items():
                if (topics and topic not in topics) or topic in self.skipped:
                    continue
                cls = message_class(info.msgtype)
                if cls is None:
                    self.skipped[topic] = f"type {info.msgtype}: message package not importable here"
                    continue
                latched = topic in LATCHED_TOPICS or info.count <= 1
                qos = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
                self.pubs[topic] = node.create_publisher(cls, topic, qos)

    def play(self, stop=lambda: False, spin=None) -> int:
        """Publish until the bag ends (or forever with loop); `spin()` is called while waiting."""
        while True:
            with Bag(self.bag_path) as bag:
                t_first = bag.start_ns + self.start_offset_ns
                wall0 = time.monotonic()
                offset = self.node.get_clock().now().nanoseconds - t_first
                for topic, msgtype, t_ns, raw in bag.raw(list(self.pubs)):
                    if t_ns < t_first:
                        continue
                    due = wall0 + (t_ns - t_first) * 1e-9 / self.rate
                    while time.monotonic() < due:
                        if stop():
                            return self.published
                        if spin is not None:
                            spin(min(0.005, max(0.0, due - time.monotonic())))
                        else:
                            time.sleep(max(0.0, min(0.005, due - time.monotonic())))
                    if self.restamp:
                        msg = deserialize_cdr(bag.store, raw, msgtype)
                        _shift(msg, offset)
                        raw = bytes(bag.store.serialize_cdr(msg, msgtype))
                    self.pubs[topic].publish(bytes(raw))
                    self.published += 1
            if not self.loop or stop():
                return self.published
