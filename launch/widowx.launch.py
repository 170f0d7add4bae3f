"""ros2 launch vla_ros widowx.launch.py checkpoint:=/path/to/ckpt instruction:="..." [actuate:=true]

Besides the policy node and the executor, starts widowx_pose_node: the end-effector pose (forward kinematics of the
xs_sdk's joint states) on the executor's measured_pose_topic, where delta chunks (released SpatialVLA and FALCON
Bridge checkpoints) start."""
import os
import sys

from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from robot_launch_common import robot_launch  # noqa: E402


def generate_launch_description():
    ld = robot_launch("widowx")
    ld.add_action(Node(package="vla_ros", executable="widowx_pose_node", name="vla_widowx_pose", output="screen",
                       parameters=[{"config": LaunchConfiguration("config")}]))
    return ld
