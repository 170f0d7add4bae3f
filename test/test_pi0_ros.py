"""π0 end to end over DDS with the Franka config: synthetic sensor topics -> policy node (a tiny π0 checkpoint)
-> ActionChunk -> executor -> the Franka adapter's target pose."""
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from vla_ros.ros.synthetic_robot import SyntheticRobot as FakeRobot
from vla_ros.ros.synthetic_robot import tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config

pytestmark = pytest.mark.ros


def run_for(ctx, robot_node, fake, until, timeout_s=60.0):
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(robot_node)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until():
            fake.publish()
            end = time.monotonic() + 0.06
            while time.monotonic() < end:
                ex.spin_once(timeout_sec=0.01)
    finally:
        ex.shutdown()
    return until()


def test_pi0_end_to_end_on_franka(tmp_path, ros_context, robot_interfaces):
    from geometry_msgs.msg import PoseStamped

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.launch_set import RobotStack

    cfg = load_runtime_config("franka")
    ckpt = tiny_checkpoint(tmp_path, cfg, method="pi0")
    robot_node = rclpy.create_node("fake_franka_pi0", context=ros_context)
    fake = FakeRobot(robot_node, cfg)
    commands, chunks = [], []
    robot_node.create_subscription(PoseStamped, cfg.adapter.command_topics[0], commands.append, 50)
    robot_node.create_subscription(ActionChunk, cfg.policy.chunk_topic, chunks.append, 50)
    stack = RobotStack(cfg, checkpoint=ckpt, actuate=True, context=ros_context, device="cpu")
    try:
        assert stack.start(), stack.policy.last_error
        ok = run_for(ros_context, robot_node, fake, lambda: len(chunks) >= 3 and len(commands) >= 3)
        assert ok, f"chunks {len(chunks)}, commands {len(commands)}, reasons {stack.policy.last_reasons}"
    finally:
        stack.stop()
        robot_node.destroy_node()
    c = chunks[-1]
    assert c.method == "pi0" and list(c.modalities) == ["rgb"]  # π0 reads images, prompt and proprio
    assert c.header.frame_id == cfg.observation.base_frame
    lo, hi = np.asarray(cfg.executor.safety.workspace_min_m), np.asarray(cfg.executor.safety.workspace_max_m)
    p = commands[-1].pose.position
    assert np.all(np.array([p.x, p.y, p.z]) >= lo - 1e-6) and np.all(np.array([p.x, p.y, p.z]) <= hi + 1e-6)
