"""End to end per method: observation stamp -> ActionChunk received, measured beside the model's own forward
time in the same run; overhead = end-to-end - forward, ratio = forward / end-to-end."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from vla_ros.bench.stats import figure, scalar

METHODS = ("baseline", "falcon", "spatial_forcing", "spatialvla_legacy")  # the tiny trainable look-alikes


def one_method(method: str, seconds: float) -> dict:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.launch_set import RobotStack
    from vla_ros.ros.msg_conversions import stamp_to_s
    from vla_ros.ros.synthetic_robot import SyntheticRobot, tiny_checkpoint
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config("franka")
    ckpt = tiny_checkpoint(Path(tempfile.mkdtemp(prefix="vla_bench_")), cfg, method)
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("bench_e2e_robot", context=ctx)
        robot = SyntheticRobot(node, cfg)
        got = []
        node.create_subscription(ActionChunk, cfg.policy.chunk_topic,
                                 lambda m: got.append((node.get_clock().now().nanoseconds * 1e-9, m)), 50)
        stack = RobotStack(cfg, checkpoint=ckpt, device="cpu", context=ctx)
        if not stack.start():
            raise RuntimeError(stack.policy.last_error)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            robot.publish()
            stop = time.monotonic() + 1 / 30  # 30 Hz camera
            while time.monotonic() < stop:
                ex.spin_once(timeout_sec=0.002)
        ex.shutdown()
        stack.stop()
    finally:
        rclpy.shutdown(context=ctx)
    e2e = np.array([t - stamp_to_s(m.header.stamp) for t, m in got[2:]])
    fwd = np.array([m.inference_latency_s for _, m in got[2:]])
    if e2e.size == 0:
        raise RuntimeError(f"{method}: no chunk received")
    return {f"{method}.obs_stamp_to_chunk_ms": figure(e2e, "ms", 1e3),
            f"{method}.model_forward_in_node_ms": figure(fwd, "ms", 1e3),
            f"{method}.overhead_ms": figure(e2e - fwd, "ms", 1e3,
                                            note="includes the observation's age when picked (camera at 30 Hz)"),
            f"{method}.forward_over_e2e": scalar(float(np.median(fwd) / np.median(e2e)), "ratio")}


def run(device: str = "cpu", quick: bool = False) -> dict:
    out = {}
    for m in METHODS:
        out.update(one_method(m, 4.0 if quick else 12.0))
    return out
