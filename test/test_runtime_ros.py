"""End to end over DDS for each robot: synthetic sensor topics -> policy node (a tiny FALCON and a tiny π0) ->
ActionChunk -> executor -> adapter topic. Plus lifecycle and the safety layers on the live nodes."""

import numpy as np
import pytest
import rclpy
from ros_harness import ADAPTER_MSG, drive

from vla_ros.core.config import from_dict, to_dict
from vla_ros.ros.synthetic_robot import SyntheticRobot as FakeRobot
from vla_ros.ros.synthetic_robot import tiny_checkpoint
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config

pytestmark = pytest.mark.ros



@pytest.mark.parametrize("method", ["falcon", "pi0"])
@pytest.mark.parametrize("robot", ["franka", "widowx", "agilex"])
def test_end_to_end_for_each_robot(robot, method, tmp_path, ros_context, robot_interfaces):
    import importlib

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.launch_set import RobotStack

    cfg = load_runtime_config(robot)
    ckpt = tiny_checkpoint(tmp_path, cfg, method)
    mod, name = ADAPTER_MSG[robot]
    msg_type = getattr(importlib.import_module(mod), name)
    robot_node = rclpy.create_node(f"fake_{robot}", context=ros_context)
    fake = FakeRobot(robot_node, cfg)
    commands, chunks = {t: [] for t in cfg.adapter.command_topics}, []
    for topic in cfg.adapter.command_topics:
        robot_node.create_subscription(msg_type, topic, commands[topic].append, 50)
    robot_node.create_subscription(ActionChunk, cfg.policy.chunk_topic, chunks.append, 50)
    stack = RobotStack(cfg, checkpoint=ckpt, actuate=True, context=ros_context, device="cpu")
    try:
        assert stack.start(), stack.policy.last_error
        ok = drive(ros_context, robot_node, fake, lambda: len(chunks) >= 3 and all(len(v) >= 3 for v in
                                                                                     commands.values()), 60.0)
        assert ok, f"chunks {len(chunks)}, commands { {k: len(v) for k, v in commands.items()} }, " \
                   f"reasons {stack.policy.last_reasons}, counters {dict(stack.executor_node.core.counters)}"
        from vla_ros.ros.nodes.policy_node import timing_breakdown_ms

        timing = list(stack.policy.timing_s)
        breakdown = timing_breakdown_ms(timing)  # what /diagnostics carries as <stage>_ms_median
        for stage in ("obs_age_at_pick", "assemble", "preprocess", "forward", "postprocess", "publish",
                      "end_to_end", "pipeline_overhead"):
            assert breakdown[stage] >= 0.0, breakdown
        t = timing[-1]  # the stages add up to the end to end (inference and publish happen in this order)
        parts = t["obs_age_at_pick"] + t["assemble"] + t["preprocess"] + t["forward"] + t["postprocess"] + t["publish"]
        assert parts <= t["end_to_end"] + 1e-6
        assert stack.policy.warmup_s > 0.0  # policy.warmup_runs inferences before the first chunk
    finally:
        stack.stop()
        robot_node.destroy_node()
    c = chunks[-1]
    assert c.header.frame_id == cfg.observation.base_frame
    assert list(c.arm_names) == list(cfg.executor.arm_names)
    stamps = [ch.header.stamp.sec + ch.header.stamp.nanosec * 1e-9 for ch in chunks]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "chunk stamps must increase"
    published = np.asarray(fake.published)
    assert np.min(np.abs(published - stamps[-1])) < 1e-6, "chunk stamp is an observation stamp"
    from vla_ros.core.constants import MODALITY_SETS

    assert c.method == method
    if method == "pi0":  # π0 reads images, prompt and proprio
        assert list(c.modalities) == ["rgb"]
    else:  # all fresh, so all allowed are used
        assert set(MODALITY_SETS[cfg.policy.modalities]) == set(c.modalities)
    lo, hi = np.asarray(cfg.executor.safety.workspace_min_m), np.asarray(cfg.executor.safety.workspace_max_m)
    for msgs in commands.values():
        m = msgs[-1]
        if robot == "franka":
            assert m.header.frame_id == cfg.observation.base_frame
            p = np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z])
            assert np.all(p >= lo - 1e-6) and np.all(p <= hi + 1e-6)
        elif robot == "widowx":
            assert m.name == "arm" and len(m.cmd) == 6
        else:
            assert 0.0 <= m.gripper <= 0.08 + 1e-9
            assert lo[0] - 1e-6 <= m.x <= hi[0] + 1e-6


def test_lifecycle_and_bad_checkpoint(tmp_path, ros_context, robot_interfaces):
    from rclpy.lifecycle import TransitionCallbackReturn as R

    from vla_ros.ros.nodes.policy_node import PolicyNode

    cfg = load_runtime_config("franka")
    bad = from_dict(RuntimeConfig, {**to_dict(cfg), "policy": {**to_dict(cfg.policy), "checkpoint": str(tmp_path / "x"),
                                                               "device": "cpu"}})
    node = PolicyNode(bad, context=ros_context)
    try:
        assert node.trigger_configure() == R.FAILURE
        assert "checkpoint folder not found" in node.last_error
        good = from_dict(RuntimeConfig, {**to_dict(bad), "policy": {**to_dict(bad.policy),
                                                                    "checkpoint": tiny_checkpoint(tmp_path, cfg)}})
        node._given_config = good
        assert node.trigger_configure() == R.SUCCESS
        assert node.policy is not None
        assert node.trigger_activate() == R.SUCCESS
        assert node.trigger_deactivate() == R.SUCCESS
        assert node.trigger_cleanup() == R.SUCCESS
        assert node.policy is None and node.frontend is None
    finally:
        node.destroy_node()


def test_instruction_from_parameter_and_run_time_change(tmp_path, ros_context, robot_interfaces):
    from rclpy.parameter import Parameter

    from vla_ros.ros.nodes.policy_node import PolicyNode

    cfg = load_runtime_config("franka")
    node = PolicyNode(cfg, context=ros_context, parameter_overrides=[
        Parameter("checkpoint", value=tiny_checkpoint(tmp_path, cfg, "baseline")), Parameter("device", value="cpu"),
        Parameter("instruction", value="open the drawer")])
    try:
        from rclpy.lifecycle import TransitionCallbackReturn as R

        assert node.trigger_configure() == R.SUCCESS
        assert node.frontend.assembler.instruction == "open the drawer"
        result = node.set_parameters([Parameter("instruction", value="close the drawer")])[0]
        assert result.successful and node.frontend.assembler.instruction == "close the drawer"
        assert not node.set_parameters([Parameter("modalities", value="thermal")])[0].successful
    finally:
        node.destroy_node()
