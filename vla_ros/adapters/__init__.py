"""Robot adapters: pure mappings from executor targets to each driver's command fields (no rclpy)."""
