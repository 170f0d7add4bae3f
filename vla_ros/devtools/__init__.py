"""Developer tooling: building interface packages, environment helpers. No rclpy import at module level."""
