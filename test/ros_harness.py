"""What the ROS tests share: the controller message of each robot's adapter, and a loop that plays the robot's
sensors (the synthetic robot) while spinning a test node until a condition holds."""
from __future__ import annotations

import time

ADAPTER_MSG = {
    "franka": ("geometry_msgs.msg", "PoseStamped"),
    "widowx": ("interbotix_xs_msgs.msg", "JointGroupCommand"),
    "agilex": ("piper_msgs.msg", "PosCmd"),
}


def drive(ctx, robot_node, fake, until, timeout_s: float = 30.0, period_s: float = 0.06) -> bool:
    """Publish a frame of everything every `period_s` and spin `robot_node` in between, until `until()` or the
    deadline; returns `until()`."""
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(robot_node)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until():
            fake.publish()
            end = time.monotonic() + period_s
            while time.monotonic() < end:
                ex.spin_once(timeout_sec=0.01)
    finally:
        ex.shutdown()
    return until()
