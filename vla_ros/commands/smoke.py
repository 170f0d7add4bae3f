"""`vla-ros smoke`: the whole runtime on loopback DDS in one process, with no robot.

A synthetic robot publishes camera, aligned depth, CameraInfo, joint states, the end-effector pose, /tf_static
and an instruction, as a Franka's drivers would. The real policy node (a tiny model built on the spot, or
`--checkpoint`) turns them into ActionChunks and the real executor plays them (dry run) through the Franka
adapter's safety layers. Prints chunk rate, observation-stamp -> chunk latency, model time, command rate and
the executor's counters as JSON; exits non-zero if any stage stayed silent.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from vla_ros.dds import apply_dds_defaults

HELP = "end-to-end ROS 2 smoke run over loopback DDS"


def add_arguments(parser) -> None:
    parser.add_argument("--robot", default="franka", help="robot config (franka, widowx, agilex)")
    parser.add_argument("--checkpoint", default="", help="checkpoint folder (default: a tiny untrained model)")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to run")
    parser.add_argument("--method", default="falcon", help="method of the tiny model")


def run(args) -> int:
    apply_dds_defaults()  # loopback discovery, and the large-frame Fast DDS profile
    import rclpy
    from geometry_msgs.msg import PoseArray
    from rclpy.executors import SingleThreadedExecutor

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.launch_set import RobotStack
    from vla_ros.ros.msg_conversions import stamp_to_s
    from vla_ros.ros.spin import init_ros
    from vla_ros.ros.synthetic_robot import SyntheticRobot, tiny_checkpoint
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config(args.robot)
    ckpt = args.checkpoint or tiny_checkpoint(Path(tempfile.mkdtemp(prefix="vla_smoke_")), cfg, args.method)
    init_ros()
    robot_node = rclpy.create_node("vla_smoke_robot")
    robot = SyntheticRobot(robot_node, cfg)
    chunks, commanded = [], []
    robot_node.create_subscription(ActionChunk, cfg.policy.chunk_topic,
                                   lambda m: chunks.append((robot_node.get_clock().now().nanoseconds * 1e-9, m)), 50)
    robot_node.create_subscription(PoseArray, "/vla_executor/commanded",
                                   lambda m: commanded.append(stamp_to_s(m.header.stamp)), 200)
    stack = RobotStack(cfg, checkpoint=ckpt, actuate=False, device="cpu")
    ok = stack.start()
    ex = SingleThreadedExecutor()
    ex.add_node(robot_node)
    end = time.monotonic() + args.seconds
    while ok and time.monotonic() < end:
        robot.publish()
        stop = time.monotonic() + 1.0 / 15
        while time.monotonic() < stop:
            ex.spin_once(timeout_sec=0.005)
    counters = dict(stack.executor_node.core.counters)
    model_ms = [1e3 * m.inference_latency_s for _, m in chunks]
    latency_ms = [1e3 * (t - stamp_to_s(m.header.stamp)) for t, m in chunks]
    gaps = np.diff(commanded) if len(commanded) > 2 else np.array([np.nan])
    report = {
        "ok": bool(ok and chunks and commanded),
        "robot": cfg.robot, "checkpoint": ckpt, "policy_error": stack.policy.last_error,
        "domain_id": os.environ.get("ROS_DOMAIN_ID", "0"),
        "chunks": len(chunks), "chunk_rate_hz": len(chunks) / args.seconds,
        "obs_to_chunk_ms_median": float(np.median(latency_ms)) if latency_ms else None,
        "model_ms_median": float(np.median(model_ms)) if model_ms else None,
        "modalities": list(chunks[-1][1].modalities) if chunks else [],
        "commands": len(commanded), "command_rate_hz": float(1.0 / np.median(gaps)) if len(commanded) > 2 else 0.0,
        "target_rate_hz": cfg.executor.rate_hz, "executor_counters": counters,
        "observation_reasons": stack.policy.last_reasons,
    }
    ex.shutdown()
    stack.stop()
    robot_node.destroy_node()
    rclpy.try_shutdown()
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1
