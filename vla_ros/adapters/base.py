"""What every robot adapter is: the driver messages it sends for a target and the targets it reads back from
recorded ones. Messages are plain data here (a ROS type name and nested fields); the ROS layer
(`vla_ros.ros.adapters`) and the bag writer (`vla_ros.data.bag_writer`) turn them into their own message
classes, so this side never imports rclpy.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vla_ros.core.chunking import Target


class UnreachableTarget(RuntimeError):
    """The robot cannot reach the target (e.g. no inverse kinematics solution): the adapter sends nothing."""


class SkipMessage(ValueError):
    """A recorded message that is not this config's command (another group, a non-finite value): why."""


@dataclass
class DriverMessage:
    """One message for the driver: `type` is "pkg/msg/Name" (published on the topic `name`) or "pkg/action/Name"
    (a goal sent to the action server `name`); `fields` nest as the message does."""

    name: str
    type: str
    fields: dict

    @property
    def is_goal(self) -> bool:
        return "/action/" in self.type


@dataclass
class Recorded:
    """What one recorded command says: its time, the arm's target pose (x y z qx qy qz qw, base frame) and/or
    the gripper opening in [0, 1] (1 = open)."""

    t_s: float
    pose7: np.ndarray | None = None
    gripper: float | None = None


def stamp_fields(t_s: float) -> dict:
    """builtin_interfaces/Time fields of a time in seconds."""
    sec = int(np.floor(t_s))
    return {"sec": sec, "nanosec": min(int(round((t_s - sec) * 1e9)), 999_999_999)}


def pose_stamped_fields(t_s: float, frame_id: str, position_m, quat_xyzw) -> dict:
    x, y, z = (float(v) for v in position_m)
    qx, qy, qz, qw = (float(v) for v in quat_xyzw)
    return {"header": {"stamp": stamp_fields(t_s), "frame_id": frame_id},
            "pose": {"position": {"x": x, "y": y, "z": z}, "orientation": {"x": qx, "y": qy, "z": qz, "w": qw}}}


def header_time_s(msg, t_ns: int) -> float:
    """The message's header stamp, or the bag's receive time when it has none (or a zero one)."""
    h = getattr(msg, "header", None)
    if h is not None and (h.stamp.sec or h.stamp.nanosec):
        return h.stamp.sec + h.stamp.nanosec * 1e-9
    return t_ns * 1e-9


class RobotAdapter(abc.ABC):
    """One robot's driver interface. A subclass, registered with `@register("<robot>")` in a module of its own
    under `vla_ros/adapters/`, sets:
    Settings: its dataclass of the `adapter.settings` YAML section.
    rest_quat_xyzw: the tool's orientation at rest (the synthetic robot's pose, tiny checkpoints' reference).
    gripper_in_commands: whether its recorded commands carry the gripper opening (else it comes from the
        gripper's joint states).
    and implements `publications`, `encode` and `decode` (plus `goals` when it sends action goals).
    """

    name: ClassVar[str] = ""
    Settings: ClassVar[type]
    rest_quat_xyzw: ClassVar[tuple[float, float, float, float]] = (1.0, 0.0, 0.0, 0.0)  # the tool pointing down
    gripper_in_commands: ClassVar[bool] = False

    def __init__(self, cfg):
        if not isinstance(cfg.settings, self.Settings):
            raise TypeError(f"{type(self).__name__} needs adapter.settings of type {self.Settings.__name__}, "
                            f"got {type(cfg.settings).__name__} (adapter.robot is {cfg.robot!r})")
        self.cfg, self.settings = cfg, cfg.settings

    @abc.abstractmethod
    def publications(self) -> list[tuple[str, str]]:
        """(topic, "pkg/msg/Name") of every topic `encode` publishes on."""

    def goals(self) -> list[tuple[str, str]]:
        """(action name, "pkg/action/Name") of every action server `encode` sends goals to."""
        return []

    def controller_topics(self) -> list[str]:
        """The topics no other node may publish on while this adapter actuates."""
        return list(self.cfg.command_topics)

    @abc.abstractmethod
    def encode(self, target: Target, stamp_s: float, frame_id: str) -> list[DriverMessage]:
        """The driver messages for one commanded target (of every arm), in sending order; UnreachableTarget when
        the robot cannot reach it."""

    def commanded_joints(self) -> np.ndarray | None:
        """The joint positions the last `encode` commanded, for adapters that command joints."""
        return None

    def recorded_topics(self, bag_topics: set[str], n_arms: int) -> dict[str, int]:
        """Topic -> arm of the recorded commands `decode` reads (by default the command topics, one per arm)."""
        return {t: a for a, t in enumerate(self.cfg.command_topics[:n_arms])}

    @abc.abstractmethod
    def decode(self, topic: str, arm: int, msg, t_ns: int) -> Recorded:
        """What a recorded message on one of `recorded_topics` commanded; SkipMessage(why) for one that is not
        this config's command."""

    @classmethod
    def gripper_topics_needed(cls, n_arms: int) -> int | None:
        """How many `adapter.gripper_topics` this robot uses with `n_arms` arms (None: the list is not read)."""
        return None

    @classmethod
    def demo_target(cls, t_s: float, seconds: float, n_arms: int) -> Target:
        """A slow sweep within reach, `t_s` into a recording `seconds` long (bags written without a robot); the
        grippers close half way through."""
        s = np.sin(0.5 * t_s)
        closing = 1.0 if t_s < seconds / 2 else 0.0
        pos = np.tile([0.45 + 0.05 * s, 0.0, 0.3], (n_arms, 1))
        return Target(pos, np.tile(cls.rest_quat_xyzw, (n_arms, 1)), np.full(n_arms, closing))
