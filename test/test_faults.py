"""Fault injection on the live stack over DDS: the policy node dies, the camera stops, tf disappears, the
checkpoint is corrupt."""
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn as R

from vla_ros.ros.launch_set import RobotStack
from vla_ros.ros.msg_conversions import stamp_to_s
from vla_ros.ros.synthetic_robot import SyntheticRobot, tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config

pytestmark = pytest.mark.ros


class Harness:
    def __init__(self, ctx, tmp_path, dynamic_tf=False):
        from geometry_msgs.msg import PoseArray

        from vla_ros.msg import ActionChunk

        self.cfg = load_runtime_config("franka")
        self.node = rclpy.create_node("fault_robot", context=ctx)
        self.robot = SyntheticRobot(self.node, self.cfg, dynamic_tf=dynamic_tf)
        self.chunks, self.commands = [], []  # commands: the executor's stamp of each
        self.node.create_subscription(ActionChunk, "/vla/action_chunk", self.chunks.append, 100)
        self.node.create_subscription(PoseArray, "/vla_executor/commanded", lambda m: self.commands.append(
            stamp_to_s(m.header.stamp)), 1000)
        self.stack = RobotStack(self.cfg, checkpoint=tiny_checkpoint(tmp_path, self.cfg), device="cpu", context=ctx)
        assert self.stack.start(), self.stack.policy.last_error
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)

    def run(self, seconds, until=None, **publish):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.robot.publish(**publish)
            stop = time.monotonic() + 1 / 15
            while time.monotonic() < stop:
                self.ex.spin_once(timeout_sec=0.005)
            if until is not None and until():
                return True
        return until() if until else True

    def invalid_after(self, n: int, **publish) -> bool:
        """Run until the policy has refused `n` more observations (its own count, however slow the machine)."""
        start = self.stack.policy.stats["invalid_observations"]
        return self.run(60, until=lambda: self.stack.policy.stats["invalid_observations"] >= start + n, **publish)

    def close(self):
        self.ex.shutdown()
        self.stack.stop()
        self.node.destroy_node()


def test_policy_node_killed_executor_holds_and_reports(ros_context, robot_interfaces, tmp_path):
    h = Harness(ros_context, tmp_path)
    try:
        assert h.run(60, until=lambda: len(h.commands) > 10)
        h.stack.policy.trigger_deactivate()  # the policy process dies: no more chunks
        h.stack.ex.remove_node(h.stack.policy)
        core = h.stack.executor_node.core
        assert h.run(60, until=lambda: core.counters["hold_timeout"] > 20)
        # no command stamped later than the timeout after the newest chunk's observation (stamps, not wall time)
        newest = max(stamp_to_s(c.header.stamp) for c in h.chunks)
        assert max(h.commands) <= newest + h.cfg.executor.safety.chunk_timeout_s + 0.25, \
            "executor kept moving after the timeout"
        assert "timeout" in h.stack.executor_node.last_command.reason
    finally:
        h.close()


def test_camera_stops_observations_go_invalid_with_reason(ros_context, robot_interfaces, tmp_path):
    h = Harness(ros_context, tmp_path)
    try:
        assert h.run(60, until=lambda: len(h.chunks) >= 2)
        assert h.invalid_after(3, camera=False)  # the last chunk of a fresh image has landed by then
        n = len(h.chunks)
        assert h.invalid_after(3, camera=False)
        assert len(h.chunks) == n, "inference continued on a stale image"
        assert any("rgb 'front' stale" in r for r in h.stack.policy.last_reasons), h.stack.policy.last_reasons
        assert h.stack.policy.stats["invalid_observations"] > 0
    finally:
        h.close()


def test_tf_removed_loud_error_and_no_inference_on_a_stale_pose(ros_context, robot_interfaces, tmp_path):
    h = Harness(ros_context, tmp_path, dynamic_tf=True)
    try:
        assert h.run(60, until=lambda: len(h.chunks) >= 2 and "pose" in h.chunks[-1].modalities)
        stale = lambda: any("extrinsics 'front'" in r and "stale" in r for r in h.stack.policy.last_reasons)  # noqa
        assert h.run(60, until=stale, tf=False)
        n = len(h.chunks)
        assert h.run(60, until=lambda: len(h.chunks) > n + 1, tf=False)
        assert "pose" not in h.chunks[-1].modalities, "a stale camera pose was used"
        assert any("extrinsics 'front'" in r and "stale" in r for r in h.stack.policy.last_reasons), \
            h.stack.policy.last_reasons
    finally:
        h.close()


def test_corrupt_checkpoint_configure_fails_clearly(ros_context, robot_interfaces, tmp_path):
    from vla_ros.ros.nodes.policy_node import PolicyNode

    cfg = load_runtime_config("franka")
    ckpt = tiny_checkpoint(tmp_path, cfg)
    weights = tmp_path / ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    node = PolicyNode(cfg, context=ros_context, parameter_overrides=[
        rclpy.parameter.Parameter("checkpoint", value=ckpt), rclpy.parameter.Parameter("device", value="cpu")])
    try:
        assert node.trigger_configure() == R.FAILURE
        assert "model.safetensors" in node.last_error and "corrupt" in node.last_error
    finally:
        node.destroy_node()
