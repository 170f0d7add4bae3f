"""pip install of the vla_ros library and the `vla-ros` command (metadata lives in setup.cfg).

On a robot, `colcon build` uses CMakeLists.txt instead, which also generates the ROS interfaces.
"""
from setuptools import setup

setup()
