"""Data: rosbag2 reading/writing without ROS (rosbags), datasets. No rclpy."""
