"""`vla-ros smoke`: an end-to-end ROS 2 round trip on loopback DDS, in one process.

A "robot" node publishes RGB, depth, CameraInfo, joint states and an ActionChunk; a "policy side" node
receives them. Prints what arrived and the publish -> receive latency per topic, and exits non-zero
if any topic stayed silent. It checks an install before the heavier `vla-ros demo`.
"""
from __future__ import annotations

import json
import os
import time

HELP = "end-to-end ROS 2 smoke run over loopback DDS"


def add_arguments(parser) -> None:
    parser.add_argument("--messages", type=int, default=20, help="messages per topic")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for everything")


def _messages(i: int, now):
    import numpy as np
    from geometry_msgs.msg import Pose
    from sensor_msgs.msg import CameraInfo, Image, JointState

    from vla_ros.msg import ActionChunk

    h, w = 48, 64
    rgb = np.full((h, w, 3), i % 255, np.uint8)
    depth_mm = np.full((h, w), 800 + i, np.uint16)
    img = Image(height=h, width=w, encoding="rgb8", step=w * 3, data=rgb.tobytes())
    depth = Image(height=h, width=w, encoding="16UC1", step=w * 2, data=depth_mm.tobytes())
    info = CameraInfo(height=h, width=w, k=[50.0, 0.0, w / 2, 0.0, 50.0, h / 2, 0.0, 0.0, 1.0])
    joints = JointState(name=[f"joint{j}" for j in range(7)], position=[0.1 * i] * 7)
    chunk = ActionChunk(horizon=1, dt_s=0.1, arm_names=["arm"], poses=[Pose()], gripper=[1.0], sequence_id=i)
    for m in (img, depth, info, joints, chunk):
        m.header.stamp = now
    return {"/camera/color/image_raw": img, "/camera/aligned_depth_to_color/image_raw": depth,
            "/camera/color/camera_info": info, "/joint_states": joints, "/vla/action_chunk": chunk}


def run(args) -> int:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.time import Time

    rclpy.init()
    robot, policy = rclpy.create_node("vla_smoke_robot"), rclpy.create_node("vla_smoke_policy")
    sample = _messages(0, robot.get_clock().now().to_msg())
    pubs = {t: robot.create_publisher(type(m), t, 10) for t, m in sample.items()}
    latency = {t: [] for t in sample}

    def on_msg(topic):
        def cb(msg):
            sent = Time.from_msg(msg.header.stamp).nanoseconds
            latency[topic].append((policy.get_clock().now().nanoseconds - sent) / 1e6)
        return cb

    for t, m in sample.items():
        policy.create_subscription(type(m), t, on_msg(t), 10)
    ex = SingleThreadedExecutor()
    ex.add_node(robot)
    ex.add_node(policy)
    sent, deadline = 0, time.monotonic() + args.timeout
    while time.monotonic() < deadline and min(len(v) for v in latency.values()) < args.messages:
        if sent < args.messages * 3:
            for t, m in _messages(sent, robot.get_clock().now().to_msg()).items():
                pubs[t].publish(m)
            sent += 1
        ex.spin_once(timeout_sec=0.02)
    summary = {t: {"received": len(v), "median_latency_ms": round(sorted(v)[len(v) // 2], 3) if v else None}
               for t, v in latency.items()}
    ok = all(len(v) > 0 for v in latency.values())
    print(json.dumps({"ok": ok, "domain_id": os.environ.get("ROS_DOMAIN_ID", "0"), "topics": summary}, indent=2))
    ex.shutdown()
    robot.destroy_node()
    policy.destroy_node()
    rclpy.shutdown()
    return 0 if ok else 1
