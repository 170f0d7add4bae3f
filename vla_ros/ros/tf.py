"""Camera extrinsics from tf: tf2_ros where installed (real robots), else a listener this package owns.

The fallback subscribes to /tf_static (transient local) and /tf with tf2_msgs/TFMessage and feeds a
`TransformTree`. Either way `lookup(target, source, now_s)` returns T_target_source or raises
TransformError naming the frames — never an identity.
"""
from __future__ import annotations

import math

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from vla_ros.core.tf_tree import TransformError, TransformTree
from vla_ros.ros.msg_conversions import stamp_to_s, transform_msg_to_matrix

STATIC_QOS = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST)
DYNAMIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def _have_tf2_ros() -> bool:
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


class TfListener:
    """Keeps the transform tree of /tf and /tf_static up to date."""

    def __init__(self, node, callback_group=None, use_tf2_ros: bool | None = None):
        self.node = node
        self.backend = "tf2_ros" if (use_tf2_ros if use_tf2_ros is not None else _have_tf2_ros()) else "vla_ros"
        if self.backend == "tf2_ros":
            import tf2_ros

            self._buffer = tf2_ros.Buffer()
            self._listener = tf2_ros.TransformListener(self._buffer, node)
            return
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError as exc:
            raise ImportError("tf: neither tf2_ros nor tf2_msgs is importable; build tf2_msgs from "
                              "interfaces/tf2_msgs (scripts/setup.sh does) or install ROS 2's tf2_ros") from exc
        self.tree = TransformTree()
        node.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), STATIC_QOS,
                                 callback_group=callback_group)
        node.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), DYNAMIC_QOS,
                                 callback_group=callback_group)

    def _on_tf(self, msg, static: bool) -> None:
        for line in self.tree.set_from_message(msg, static):
            self.node.get_logger().warning(f"tf: {line}", throttle_duration_sec=5.0)

    def lookup(self, target: str, source: str, now_s: float | None = None, max_age_s: float = math.inf
               ) -> tuple[np.ndarray, float | None]:
        """T_target_source and the stamp of the oldest dynamic link (None when all static)."""
        if self.backend == "vla_ros":
            return self.tree.lookup(target, source, now_s, max_age_s)
        import tf2_ros
        from rclpy.time import Time

        try:
            t = self._buffer.lookup_transform(target, source, Time())
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException, tf2_ros.ExtrapolationException) as exc:
            raise TransformError(f"no transform {target} <- {source}: {exc}") from None
        stamp = stamp_to_s(t.header.stamp)
        if stamp == 0.0:
            return transform_msg_to_matrix(t.transform), None  # static
        if now_s is not None and now_s - stamp > max_age_s:
            raise TransformError(f"no transform {target} <- {source}: stale ({now_s - stamp:.3f} s > {max_age_s} s)")
        return transform_msg_to_matrix(t.transform), stamp
