"""Robot adapters, one class per robot (no rclpy): each maps executor targets to its driver's messages and reads
recorded ones back (`base.RobotAdapter`); `registry` finds them by the YAML's `adapter.robot`."""
