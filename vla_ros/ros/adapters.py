"""The ROS side of a robot adapter: publishers and action clients for the messages its `encode` makes. Robot
message packages are imported at run time; a missing one is a clear error that says how to get it."""
from __future__ import annotations

import importlib

from vla_ros.adapters.base import DriverMessage, UnreachableTarget
from vla_ros.adapters.config import AdapterConfig
from vla_ros.adapters.registry import make_adapter
from vla_ros.core.chunking import Target
from vla_ros.ros import qos


def import_robot_msg(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        pkg = module.split(".")[0]
        raise ImportError(f"robot interface package {pkg!r} is not installed: install the robot's ROS packages, or "
                          f"build it from vla_ros/interfaces/{pkg} (scripts/setup.sh does)") from exc


def ros_type(type_name: str):
    """The rclpy class of "pkg/msg/Name" or "pkg/action/Name"."""
    pkg, kind, name = type_name.split("/")
    return import_robot_msg(f"{pkg}.{kind}", name)


def fill(msg, fields: dict):
    """Set `fields` (nested as the message nests) on a message instance; returns it."""
    for key, value in fields.items():
        if isinstance(value, dict):
            fill(getattr(msg, key), value)
        else:
            setattr(msg, key, value)
    return msg


class AdapterPublisher:
    """Sends the robot adapter's driver messages for each executor target."""

    def __init__(self, node, cfg: AdapterConfig, base_frame: str, callback_group=None):
        self.node, self.cfg, self.base_frame = node, cfg, base_frame
        self.adapter = make_adapter(cfg)
        self.errors = 0
        self.goals_sent = 0
        self.types = {t: ros_type(t) for _, t in self.adapter.publications() + self.adapter.goals()}
        self.pubs = {topic: node.create_publisher(self.types[t], topic, qos.RELIABLE)
                     for topic, t in self.adapter.publications()}
        self.clients = {}
        if self.adapter.goals():
            from rclpy.action import ActionClient

            self.clients = {name: ActionClient(node, self.types[t], name, callback_group=callback_group)
                            for name, t in self.adapter.goals()}

    def controller_topics(self) -> list[str]:
        return self.adapter.controller_topics()

    def send(self, target: Target, now_s: float) -> None:
        try:
            messages = self.adapter.encode(target, now_s, self.base_frame)
        except UnreachableTarget as exc:
            self.errors += 1
            self.node.get_logger().warning(f"{self.adapter.name}: {exc}; holding", throttle_duration_sec=2.0)
            return
        for m in messages:
            if m.is_goal:
                self._send_goal(m)
            else:
                self.pubs[m.name].publish(fill(self.types[m.type](), m.fields))

    def _send_goal(self, m: DriverMessage) -> None:
        client = self.clients[m.name]
        if not client.server_is_ready():
            self.errors += 1
            self.node.get_logger().warning(f"{self.adapter.name}: action server {m.name} not available",
                                           throttle_duration_sec=2.0)
            return
        client.send_goal_async(fill(self.types[m.type].Goal(), m.fields))
        self.goals_sent += 1
