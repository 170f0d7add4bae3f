"""Offline evaluation of policies on recorded data, and its report. No rclpy."""
