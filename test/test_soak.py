"""Soak: ~2 minutes of 30 Hz RGB-D and 500 Hz joint states through the live stack with a tiny policy.
No callback exception, bounded buffers, bounded RSS growth, every chunk stamped after the previous one.
VLA_ROS_SOAK_S shortens it for local runs."""
import os
import resource
import subprocess
import sys
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from vla_ros.ros.launch_set import RobotStack
from vla_ros.ros.synthetic_robot import tiny_checkpoint
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
    from vla_ros.msg import ActionChunk
    from vla_ros.ros.msg_conversions import stamp_to_s

    cfg = load_runtime_config("franka")
    # The sensors run in their own process, as drivers do: 30 Hz RGB-D + CameraInfo, 500 Hz joint states.
    robot = subprocess.Popen([sys.executable, "-m", "vla_ros.ros.synthetic_robot", "--config", "franka",
                              "--camera-hz", "30", "--joint-hz", "500", "--seconds", str(SOAK_S + 5)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = rclpy.create_node("soak_listener", context=ros_context)
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
            ex.spin_once(timeout_sec=0.05)
            if rss_warm is None and time.monotonic() - start > min(20.0, SOAK_S / 4):
                rss_warm = rss_mb()
    finally:
        rss_end = rss_mb()
        frontend = stack.policy.frontend
        assembler = frontend.assembler
        buffers = {"rgb": max(len(s.stamps) for s in assembler._rgb.values()),
                   "depth": max(len(s.stamps) for s in assembler._depth.values()),
                   "joints": len(assembler._joints.stamps)}
        rejected, received = dict(frontend.rejected), dict(frontend.received)
        errors = stack.policy.stats["inference_errors"]
        ex.shutdown()
        stack.stop()
        node.destroy_node()
        robot.terminate()
        robot_out = robot.communicate(timeout=10)[0]
    print(f"soak {SOAK_S:.0f} s: received {received}, {len(stamps)} chunks, RSS {rss_warm:.0f} -> {rss_end:.0f} MB, "
          f"buffers {buffers}; {robot_out.strip()}")
    assert received.get("joints", 0) > 100 * SOAK_S, "the joint stream did not reach the node"
    assert not rejected, f"callbacks rejected input: {rejected}"
    assert errors == 0
    assert len(stamps) > SOAK_S  # more than one chunk per second on average
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "a chunk was not stamped after the previous one"
    assert buffers["rgb"] <= 4 and buffers["depth"] <= 8
    assert buffers["joints"] <= 4096 and buffers["joints"] < 2 * 500 * cfg.observation.joint_buffer_s + 10
    assert rss_end - rss_warm < RSS_GROWTH_BOUND_MB, f"RSS grew {rss_end - rss_warm:.0f} MB"
