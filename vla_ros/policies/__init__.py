"""Policies (PyTorch): one folder per method, found by name through factory.py. No rclpy."""
