"""ros2 launch vla_ros franka.launch.py checkpoint:=/path/to/ckpt instruction:="..." [actuate:=true]"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from robot_launch_common import robot_launch  # noqa: E402


def generate_launch_description():
    return robot_launch("franka")
