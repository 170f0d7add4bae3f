"""ros2 launch vla_ros sim.launch.py [checkpoint:=/path/to/ckpt] [task:=place_on_platform] [seed:=100000]

The MuJoCo tabletop (sim_node, publishing what a Franka + RealSense publish) with the policy node and the
executor actuating it through the Franka adapter. The default checkpoint is the bundled sim FALCON one.
"""
import os
import sys

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from robot_launch_common import robot_launch  # noqa: E402


def generate_launch_description():
    from vla_ros.sim.checkpoints import bundled_checkpoint

    stack = robot_launch("sim_franka", default_checkpoint=bundled_checkpoint("falcon"), default_actuate="true")
    args = [DeclareLaunchArgument("task", default_value="", description="first task ('' = chosen by the seed)"),
            DeclareLaunchArgument("seed", default_value="100000", description="first episode's seed")]
    sim = Node(package="vla_ros", executable="sim_node", name="vla_sim", output="screen",
               parameters=[{"task": LaunchConfiguration("task"), "seed": LaunchConfiguration("seed")}])
    return LaunchDescription([*args, sim, *stack.entities])
