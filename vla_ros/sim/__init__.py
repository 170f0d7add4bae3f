"""MuJoCo tabletop simulation (numpy + mujoco, no rclpy). Rendered headless with MUJOCO_GL=egl."""
