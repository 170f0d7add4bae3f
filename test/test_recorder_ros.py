"""The runtime records observations, chunks, executed commands and diagnostics to an MCAP rosbag2 that the
bag reader (and standard tools) open, with the ActionChunk definition embedded."""
import pytest
import rclpy
from ros_harness import drive

from vla_ros.data.bags import Bag
from vla_ros.ros.launch_set import RobotStack
from vla_ros.ros.recorder import BagRecorder, runtime_topics
from vla_ros.ros.synthetic_robot import SyntheticRobot, tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config

pytestmark = pytest.mark.ros


def test_record_runtime_to_mcap(tmp_path, ros_context, robot_interfaces):
    cfg = load_runtime_config("franka")
    node = rclpy.create_node("rec_robot", context=ros_context)
    robot = SyntheticRobot(node, cfg)
    stack = RobotStack(cfg, checkpoint=tiny_checkpoint(tmp_path, cfg, "baseline"), device="cpu", context=ros_context)
    assert stack.start(), stack.policy.last_error
    rec_node = rclpy.create_node("rec_node", context=ros_context)
    recorder = BagRecorder(rec_node, tmp_path / "rec", runtime_topics(cfg))
    topics = ("/vla/action_chunk", "/vla_executor/commanded", "/camera/color/image_raw", "/joint_states")
    try:
        drive(ros_context, [node, rec_node], robot, lambda: all(recorder.counts.get(t, 0) > 1 for t in topics),
              timeout_s=60.0, period_s=1 / 15)
    finally:
        counts = recorder.close()
        stack.stop()
        node.destroy_node()
        rec_node.destroy_node()
    for topic in topics:
        assert counts.get(topic, 0) > 0, (topic, counts, recorder.skipped)
    with Bag(tmp_path / "rec") as bag:
        chunks = [m for _, _, m in bag.messages(["/vla/action_chunk"])]
        assert not bag.skipped
    assert chunks and chunks[0].arm_names == ["arm"] and chunks[0].horizon == len(chunks[0].poses)
