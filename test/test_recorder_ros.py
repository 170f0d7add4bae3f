"""The runtime records observations, chunks, executed commands and diagnostics to an MCAP rosbag2 that the
bag reader (and standard tools) open, with the ActionChunk definition embedded."""
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

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
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(rec_node)
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        robot.publish()
        stop = time.monotonic() + 1 / 15
        while time.monotonic() < stop:
            ex.spin_once(timeout_sec=0.005)
    counts = recorder.close()
    ex.shutdown()
    stack.stop()
    node.destroy_node()
    rec_node.destroy_node()
    for topic in ("/vla/action_chunk", "/vla_executor/commanded", "/camera/color/image_raw", "/joint_states"):
        assert counts.get(topic, 0) > 0, (topic, counts, recorder.skipped)
    with Bag(tmp_path / "rec") as bag:
        chunks = [m for _, _, m in bag.messages(["/vla/action_chunk"])]
        assert not bag.skipped
    assert chunks and chunks[0].arm_names == ["arm"] and chunks[0].horizon == len(chunks[0].poses)
