"""Soak: ~2 minutes of 30 Hz RGB-D and 500 Hz joint states through the live stack with a tiny policy.
No callback exception, bounded buffers, bounded RSS growth, every chunk stamped after the previous one.
VLA_ROS_SOAK_S shortens it for local runs."""
import os
import resource
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from vla_ros.ros.launch_set import RobotStack
from vla_ros.ros.synthetic_robot import SyntheticRobot, tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SOAK_S = float(os.environ.get("VLA_ROS_SOAK_S", "120"))
RSS_GROWTH_BOUND_MB = 150.0


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def test_soak(ros_context, robot_interfaces, tmp_path):
    from sensor_msgs.msg import JointState

    from vla_ros.msg import ActionChunk
    from vla_ros.ros import qos
    from vla_ros.ros.msg_conversions import s_to_stamp, stamp_to_s

    cfg = load_runtime_config("franka")
    node = rclpy.create_node("soak_robot", context=ros_context)
    robot = SyntheticRobot(node, cfg)
    joints = node.create_publisher(JointState, cfg.observation.joint_topic, qos.SENSOR)
    names = list(cfg.observation.joint_names)
    counts = {"joints": 0, "frames": 0}

    def joint_tick():
        js = JointState(name=names, position=[0.0] * len(names))
        js.header.stamp = s_to_stamp(node.get_clock().now().nanoseconds * 1e-9)
        joints.publish(js)
        counts["joints"] += 1

    def frame_tick():
        robot.publish()
        counts["frames"] += 1

    node.create_timer(1 / 500, joint_tick)
    node.create_timer(1 / 30, frame_tick)
    stamps = []
    node.create_subscription(ActionChunk, cfg.policy.chunk_topic, lambda m: stamps.append(stamp_to_s(m.header.stamp)),
                             100)
    stack = RobotStack(cfg, checkpoint=tiny_checkpoint(tmp_path, cfg), device="cpu", context=ros_context)
    assert stack.start(), stack.policy.last_error
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    start = time.monotonic()
    rss_warm = None
    try:
        while time.monotonic() - start < SOAK_S:
            ex.spin_once(timeout_sec=0.01)
            if rss_warm is None and time.monotonic() - start > min(20.0, SOAK_S / 4):
                rss_warm = rss_mb()
    finally:
        rss_end = rss_mb()
        frontend = stack.policy.frontend
        assembler = frontend.assembler
        buffers = {"rgb": max(len(s.stamps) for s in assembler._rgb.values()),
                   "depth": max(len(s.stamps) for s in assembler._depth.values()),
                   "joints": len(assembler._joints.stamps)}
        rejected = dict(frontend.rejected)
        errors = stack.policy.stats["inference_errors"]
        ex.shutdown()
        stack.stop()
        node.destroy_node()
    print(f"soak {SOAK_S:.0f} s: {counts['frames']} frames, {counts['joints']} joint states, {len(stamps)} chunks, "
          f"RSS {rss_warm:.0f} -> {rss_end:.0f} MB, buffers {buffers}")
    assert not rejected, f"callbacks rejected input: {rejected}"
    assert errors == 0
    assert len(stamps) > SOAK_S  # more than one chunk per second on average
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "a chunk was not stamped after the previous one"
    assert buffers["rgb"] <= 4 and buffers["depth"] <= 8
    assert buffers["joints"] <= 4096 and buffers["joints"] < 2 * 500 * cfg.observation.joint_buffer_s + 10
    assert rss_end - rss_warm < RSS_GROWTH_BOUND_MB, f"RSS grew {rss_end - rss_warm:.0f} MB"
