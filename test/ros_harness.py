"""What the tests share: the controller message of each robot's adapter, an executor over test nodes that is
torn down with them, a loop that plays the robot's sensors (the synthetic robot) while spinning until a
condition holds, and one-arm ActionChunk builders."""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from vla_ros.core.types import ActionChunk

ADAPTER_MSG = {
    "franka": ("geometry_msgs.msg", "PoseStamped"),
    "widowx": ("interbotix_xs_msgs.msg", "JointGroupCommand"),
    "agilex": ("piper_msgs.msg", "PosCmd"),
}
DOWN_XYZW = np.array([1.0, 0.0, 0.0, 0.0])  # tool pointing down


@contextmanager
def spinning(ctx, *nodes, multi_threaded: bool = False):
    """An executor of `ctx` over `nodes`; on exit it is shut down and the nodes are destroyed."""
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    ex = (MultiThreadedExecutor if multi_threaded else SingleThreadedExecutor)(context=ctx)
    for node in nodes:
        ex.add_node(node)
    try:
        yield ex
    finally:
        ex.shutdown()
        for node in nodes:
            node.destroy_node()


def drive(ctx, robot_node, fake, until, timeout_s: float = 30.0, period_s: float = 0.06) -> bool:
    """Publish a frame of everything every `period_s` and spin `robot_node` (a node or a list of nodes) in
    between, until `until()` or the deadline; returns `until()`."""
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    for node in robot_node if isinstance(robot_node, (list, tuple)) else [robot_node]:
        ex.add_node(node)
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


def arm_chunk(stamp_s: float, positions_m, *, quat_xyzw=DOWN_XYZW, gripper=1.0, dt_s: float = 0.1,
              frame_id: str = "base", **fields) -> ActionChunk:
    """A one-arm ("arm") chunk through `positions_m` (T, 3); `quat_xyzw` (4,) or (T, 4) and `gripper` (a number
    or (T,)) hold for every step unless given per step; `fields` go to ActionChunk (seq, reference, ...)."""
    pos = np.asarray(positions_m, dtype=float).reshape(-1, 1, 3)
    T = len(pos)
    quat = np.broadcast_to(np.asarray(quat_xyzw, dtype=float).reshape(-1, 1, 4), (T, 1, 4)).copy()
    grip = np.broadcast_to(np.asarray(gripper, dtype=float).reshape(-1, 1), (T, 1)).copy()
    return ActionChunk(stamp_s=stamp_s, dt_s=dt_s, frame_id=frame_id, arm_names=["arm"], position_m=pos,
                       quat_xyzw=quat, gripper=grip, **fields)


def held_chunk(stamp_s: float, position_m, horizon: int = 8, **kw) -> ActionChunk:
    """`arm_chunk` that stays at one position for `horizon` steps."""
    return arm_chunk(stamp_s, np.tile(np.asarray(position_m, dtype=float), (horizon, 1)), **kw)
