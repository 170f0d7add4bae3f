"""Thin publishers for each robot adapter. Robot message packages are imported at run time; a missing one
is a clear error that says how to get it."""
from __future__ import annotations

import importlib

from geometry_msgs.msg import PoseStamped

from vla_ros.adapters.config import AdapterConfig
from vla_ros.adapters.franka import FrankaMapping
from vla_ros.adapters.piper import PiperMapping
from vla_ros.adapters.widowx import IKError, WidowXMapping
from vla_ros.core.chunking import Target
from vla_ros.ros import qos
from vla_ros.ros.msg_conversions import s_to_stamp


def import_robot_msg(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        pkg = module.split(".")[0]
        raise ImportError(f"robot interface package {pkg!r} is not installed: install the robot's ROS packages, or "
                          f"build it from vla_ros/interfaces/{pkg} (scripts/setup.sh does)") from exc


class AdapterPublisher:
    """Maps executor targets to the robot driver's commands and publishes them."""

    def __init__(self, node, cfg: AdapterConfig, base_frame: str, callback_group=None):
        self.node, self.cfg, self.base_frame = node, cfg, base_frame
        self.errors = 0
        self.goals_sent = 0
        if cfg.robot == "franka":
            from rclpy.action import ActionClient

            self.mapping = FrankaMapping(cfg)
            self.pubs = [node.create_publisher(PoseStamped, t, qos.RELIABLE) for t in cfg.command_topics]
            self.Move = import_robot_msg("franka_msgs.action", "Move")
            self.Grasp = import_robot_msg("franka_msgs.action", "Grasp")
            self.move = [ActionClient(node, self.Move, f"{ns}/move", callback_group=callback_group)
                         for ns in cfg.gripper_topics]
            self.grasp = [ActionClient(node, self.Grasp, f"{ns}/grasp", callback_group=callback_group)
                          for ns in cfg.gripper_topics]
        elif cfg.robot == "widowx":
            self.mapping = WidowXMapping(cfg)
            group = import_robot_msg("interbotix_xs_msgs.msg", "JointGroupCommand")
            single = import_robot_msg("interbotix_xs_msgs.msg", "JointSingleCommand")
            self.pubs = [node.create_publisher(group, cfg.command_topics[0], qos.RELIABLE)]
            self.gripper_pub = node.create_publisher(single, cfg.gripper_topics[0], qos.RELIABLE)
        else:
            self.mapping = PiperMapping(cfg)
            self.PosCmd = import_robot_msg("piper_msgs.msg", "PosCmd")
            self.pubs = [node.create_publisher(self.PosCmd, t, qos.RELIABLE) for t in cfg.command_topics]

    def controller_topics(self) -> list[str]:
        return list(self.cfg.command_topics)

    def send(self, target: Target, now_s: float) -> None:
        if self.cfg.robot == "franka":
            for pub, (p, q) in zip(self.pubs, self.mapping.pose_targets(target)):
                msg = PoseStamped()
                msg.header.stamp, msg.header.frame_id = s_to_stamp(now_s), self.base_frame
                msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = p
                msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z, msg.pose.orientation.w = q
                pub.publish(msg)
            for arm, kind, fields in self.mapping.gripper_goals(target):
                self._send_gripper_goal(arm, kind, fields)
        elif self.cfg.robot == "widowx":
            from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand

            try:
                name, q = self.mapping.joint_command(target)
            except IKError as exc:
                self.errors += 1
                self.node.get_logger().warning(f"widowx: {exc}; holding", throttle_duration_sec=2.0)
                return
            self.pubs[0].publish(JointGroupCommand(name=name, cmd=q))
            g = self.mapping.gripper_command(target)
            if g is not None:
                self.gripper_pub.publish(JointSingleCommand(name="gripper", cmd=float(g)))
        else:
            for pub, fields in zip(self.pubs, self.mapping.pos_cmds(target)):
                pub.publish(self.PosCmd(**fields))

    def _send_gripper_goal(self, arm: int, kind: str, fields: dict) -> None:
        client = (self.move if kind == "move" else self.grasp)[arm]
        if not client.server_is_ready():
            self.errors += 1
            self.node.get_logger().warning(f"franka gripper: {kind} server not available", throttle_duration_sec=2.0)
            return
        goal = (self.Move if kind == "move" else self.Grasp).Goal()
        goal.width, goal.speed = float(fields["width"]), float(fields["speed"])
        if kind == "grasp":
            goal.force = float(fields["force"])
            goal.epsilon.inner, goal.epsilon.outer = fields["epsilon"]
        client.send_goal_async(goal)
        self.goals_sent += 1
