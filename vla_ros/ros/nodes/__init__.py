"""Executable nodes (`ros2 run vla_ros <name>`), each ending in `main(args=None)`."""
