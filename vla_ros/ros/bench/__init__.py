"""Benchmarks behind `vla-ros bench` that use ROS (nodes over DDS, the synthetic robot): each module's
`run(device, quick) -> {name: figure}`. The areas that need no ROS live in vla_ros/bench/."""
