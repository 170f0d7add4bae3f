"""WidowX end-effector pose publisher: forward kinematics of the wx250s joint states, published as a PoseStamped
in the base frame on the executor's `measured_pose_topic` (the xs_sdk publishes joint states only). Delta chunks
(e.g. a released SpatialVLA's `delta_target` steps) start from this pose:
`ros2 run vla_ros widowx_pose_node --ros-args -p config:=widowx_spatialvla`.
"""
from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import JointState

from vla_ros.adapters.widowx import ee_pose_from_joints
from vla_ros.ros import qos
from vla_ros.runtime_config import load_runtime_config


class WidowXPoseNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_widowx_pose", **kwargs)
        self.declare_parameter("config", "widowx_spatialvla",
                               ParameterDescriptor(description="robot config name or YAML", read_only=True))
        cfg = load_runtime_config(self.get_parameter("config").value)
        topic = cfg.executor.measured_pose_topic or cfg.observation.ee_pose_topic
        if not topic:
            raise ValueError("executor.measured_pose_topic: the config names no pose topic to publish")
        self.frame = cfg.observation.base_frame
        self.rejected = 0
        self.pub = self.create_publisher(PoseStamped, topic, qos.SENSOR)
        self.create_subscription(JointState, cfg.observation.joint_topic, self._on_joints, qos.SENSOR)

    def _on_joints(self, msg: JointState) -> None:
        try:
            pos, quat = ee_pose_from_joints(list(msg.name), list(msg.position))
        except KeyError as exc:
            self.rejected += 1
            self.get_logger().warn(str(exc), throttle_duration_sec=5.0)
            return
        out = PoseStamped()
        out.header.stamp, out.header.frame_id = msg.header.stamp, self.frame
        p, o = out.pose.position, out.pose.orientation
        p.x, p.y, p.z = (float(v) for v in pos)
        o.x, o.y, o.z, o.w = (float(v) for v in quat)
        self.pub.publish(out)


def main(args=None) -> int:
    from vla_ros.ros.spin import spin_node

    return spin_node(WidowXPoseNode, args)
