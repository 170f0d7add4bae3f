"""ROS 2 shells: the only package that imports rclpy. Nodes are thin; the logic lives in vla_ros.core."""
