"""ROS 2 shells: the only package that imports rclpy. Nodes are thin; the logic lives in vla_ros.core.

Importing it sets the DDS defaults (vla_ros.dds) before any rclpy context exists, so every node vla_ros starts
publishes camera frames that reach other processes."""
from vla_ros.dds import apply_dds_defaults

apply_dds_defaults()
