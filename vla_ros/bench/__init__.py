"""Benchmarks behind `vla-ros bench` that need no ROS (policy, remote): each module's `run(device, quick) ->
{name: figure}`, and the figure helpers (stats.py). The areas that use ROS live in vla_ros/ros/bench/."""
