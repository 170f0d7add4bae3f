"""Pure core: types, conversions, chunking, safety, configs. No torch, no rclpy."""
