"""End to end per method, with the causes separated: the synthetic robot publishes 640x480 RGB-D at 30 Hz from
its own process (as a camera driver does), the policy node and the executor run as `vla-ros run` runs them, and a
subscriber stands where the executor is. Per chunk: the observation's age when the worker picked it, assembly,
pre-processing, model forward, post-processing, publish, publish -> receipt (DDS), end to end; and
pipeline_overhead = end to end - observation age when picked - model forward. The same model's forward alone, with
the node's thread count, back to back and at the node's rate, is the reference the in-node forward is held to."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vla_ros.bench.policy import forward_times
from vla_ros.bench.stats import figure, scalar
from vla_ros.core.constants import TINY_METHODS
from vla_ros.core.executor import tick_timing

STAGES = ("obs_age_at_pick", "assemble", "preprocess", "forward", "postprocess", "publish")


def one_method(method: str, seconds: float, executor_rate_hz: float | None = None) -> dict:
    """The figures above for `method`; with `executor_rate_hz`, the executor node runs at that rate in the same
    process and its achieved rate and tick-to-tick jitter (the control thread's own tick instants) are added."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.delivery_probe import start_synthetic_camera
    from vla_ros.ros.launch_set import RobotStack
    from vla_ros.ros.msg_conversions import stamp_to_s
    from vla_ros.ros.synthetic_robot import tiny_checkpoint
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config("franka")
    torch.set_num_threads(cfg.policy.cpu_threads())  # as the node sets it
    # the reference the in-node forward is held to (not needed when the run is for the executor's figures)
    back_to_back = at_rate = None
    if not executor_rate_hz:
        back_to_back, _ = forward_times(method, "cpu", 40)
        at_rate, _ = forward_times(method, "cpu", 12 if seconds < 8 else 25, gap_s=1.0 / cfg.policy.rate_hz)
    else:
        from vla_ros.core.config import override

        cfg = override(cfg, {"executor": {"rate_hz": executor_rate_hz}})
    ckpt = tiny_checkpoint(Path(tempfile.mkdtemp(prefix="vla_bench_")), cfg, method)
    camera = start_synthetic_camera(480, 640, seconds + 8.0)
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("bench_e2e_receiver", context=ctx)
        got = []

        def on_chunk(m, info):
            got.append((node.get_clock().now().nanoseconds * 1e-9, stamp_to_s(m.header.stamp),
                        (info["received_timestamp"] - info["source_timestamp"]) * 1e-9))
        node.create_subscription(ActionChunk, cfg.policy.chunk_topic, on_chunk, 50)
        stack = RobotStack(cfg, checkpoint=ckpt, device="cpu", context=ctx)
        if not stack.start():
            raise RuntimeError(stack.policy.last_error)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        deadline, window_end = time.monotonic() + seconds + 30.0, None  # the camera process takes seconds to start
        while time.monotonic() < min(deadline, window_end or deadline):
            ex.spin_once(timeout_sec=0.05)
            if got and window_end is None:
                window_end = time.monotonic() + seconds
        timings = list(stack.policy.timing_s)[2:]
        ticks = [t for t in stack.executor_node.tick_times_s if window_end and t >= window_end - seconds]
        ex.shutdown()
        stack.stop()
    finally:
        rclpy.try_shutdown(context=ctx)
        camera.terminate()
        camera.wait(timeout=10)
    if len(got) < 3:
        raise RuntimeError(f"{method}: no chunk received")
    got = got[2:]
    e2e = np.array([t - stamp for t, stamp, _ in got])
    out = {f"{method}.obs_stamp_to_chunk_ms": figure(e2e, "ms", 1e3),
           f"{method}.publish_to_receipt_ms": figure([d for _, _, d in got], "ms", 1e3)}
    for stage in STAGES:
        out[f"{method}.{stage}_ms"] = figure([t[stage] for t in timings], "ms", 1e3)
    out[f"{method}.model_forward_in_node_ms"] = out.pop(f"{method}.forward_ms")
    fwd = np.median([t["forward"] for t in timings])
    if back_to_back is not None:
        out[f"{method}.forward_isolated_ms"] = figure(back_to_back, "ms", 1e3, note="back to back, same threads")
        out[f"{method}.forward_isolated_at_rate_ms"] = figure(
            at_rate, "ms", 1e3, note=f"alone, one call every 1/policy.rate_hz = {1e3 / cfg.policy.rate_hz:g} ms")
        out[f"{method}.forward_in_node_over_isolated"] = scalar(float(fwd / np.median(back_to_back)), "ratio")
        out[f"{method}.forward_in_node_over_isolated_at_rate"] = scalar(float(fwd / np.median(at_rate)), "ratio")
    over = [t["end_to_end"] - t["obs_age_at_pick"] - t["forward"] for t in timings]
    out[f"{method}.pipeline_overhead_ms"] = figure(over, "ms", 1e3,
                                                   note="end to end - observation age when picked - forward")
    out[f"{method}.forward_over_e2e"] = scalar(float(fwd / np.median(e2e)), "ratio")
    if executor_rate_hz:
        out.update(rate_figures(f"{method}.executor_{executor_rate_hz:g}hz", ticks, executor_rate_hz))
    return out


def rate_figures(name: str, tick_times_s, rate_hz: float) -> dict:
    """Achieved rate and jitter |gap - period| of a control loop's ticks (core.executor.tick_timing)."""
    achieved, jitter = tick_timing(tick_times_s, rate_hz)
    return {f"{name}.achieved_hz": scalar(achieved, "Hz", target=rate_hz),
            f"{name}.jitter_ms": figure(jitter, "ms", 1e3)}


def run(device: str = "cpu", quick: bool = False) -> dict:
    out = {}
    for m in TINY_METHODS:
        out.update(one_method(m, 4.0 if quick else 12.0))
    return out
