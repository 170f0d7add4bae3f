"""π0 end to end over DDS with the Franka, WidowX and AgileX configs: synthetic sensor topics -> policy node (a
tiny π0 checkpoint) -> ActionChunk -> executor -> the robot adapter's command topic."""

import numpy as np
import pytest
import rclpy
from ros_harness import ADAPTER_MSG, drive

from vla_ros.ros.synthetic_robot import SyntheticRobot as FakeRobot
from vla_ros.ros.synthetic_robot import tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config

pytestmark = pytest.mark.ros



@pytest.mark.parametrize("robot", ["franka", "widowx", "agilex"])
def test_pi0_end_to_end(robot, tmp_path, ros_context, robot_interfaces):
    import importlib

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.launch_set import RobotStack

    cfg = load_runtime_config(robot)
    ckpt = tiny_checkpoint(tmp_path, cfg, method="pi0")
    mod, name = ADAPTER_MSG[robot]
    msg_type = getattr(importlib.import_module(mod), name)
    robot_node = rclpy.create_node(f"fake_{robot}_pi0", context=ros_context)
    fake = FakeRobot(robot_node, cfg)
    commands, chunks = {t: [] for t in cfg.adapter.command_topics}, []
    for topic in cfg.adapter.command_topics:
        robot_node.create_subscription(msg_type, topic, commands[topic].append, 50)
    robot_node.create_subscription(ActionChunk, cfg.policy.chunk_topic, chunks.append, 50)
    stack = RobotStack(cfg, checkpoint=ckpt, actuate=True, context=ros_context, device="cpu")
    try:
        assert stack.start(), stack.policy.last_error
        ok = drive(ros_context, robot_node, fake,
                   lambda: len(chunks) >= 3 and all(len(v) >= 3 for v in commands.values()), timeout_s=60.0)
        assert ok, f"chunks {len(chunks)}, commands { {k: len(v) for k, v in commands.items()} }, " \
                   f"reasons {stack.policy.last_reasons}"
    finally:
        stack.stop()
        robot_node.destroy_node()
    c = chunks[-1]
    assert c.method == "pi0" and list(c.modalities) == ["rgb"]  # π0 reads images, prompt and proprio
    assert c.header.frame_id == cfg.observation.base_frame and list(c.arm_names) == list(cfg.executor.arm_names)
    lo, hi = np.asarray(cfg.executor.safety.workspace_min_m), np.asarray(cfg.executor.safety.workspace_max_m)
    for msgs in commands.values():
        m = msgs[-1]
        if robot == "franka":
            p = np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z])
            assert np.all(p >= lo - 1e-6) and np.all(p <= hi + 1e-6)
        elif robot == "widowx":
            assert m.name == "arm" and len(m.cmd) == 6
        else:
            assert lo[0] - 1e-6 <= m.x <= hi[0] + 1e-6
