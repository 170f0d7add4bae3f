"""Executor figures: achieved rate and tick-to-tick jitter of the live node's control thread (dry run, its own
tick instants), and seam size at chunk boundaries in splice and ensemble modes."""
from __future__ import annotations

import threading
import time

import numpy as np

from vla_ros.bench.stats import scalar
from vla_ros.core.config import from_dict, override
from vla_ros.core.constants import TOOL_DOWN_QUAT_XYZW
from vla_ros.core.executor import Executor, ExecutorConfig
from vla_ros.core.types import ActionChunk

WITH_POLICY = "spatialvla_legacy"


def _chunk(stamp: float, x0: float, step_m: float, horizon: int, dt: float, seq: int, offset_m: float = 0.0
           ) -> ActionChunk:
    x = x0 + offset_m + step_m * np.arange(1, horizon + 1)
    pos = np.stack([x, np.zeros(horizon), np.full(horizon, 0.3)], -1)[:, None]
    return ActionChunk(stamp_s=stamp, dt_s=dt, frame_id="base", arm_names=["arm"], position_m=pos,
                       quat_xyzw=np.tile(TOOL_DOWN_QUAT_XYZW, (horizon, 1, 1)), gripper=np.ones((horizon, 1)), seq=seq)


def control_ticks(rate_hz: float, seconds: float) -> list[float]:
    """The executor node's control tick instants (s) at `rate_hz`, chunks fed by a stand-in policy."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from vla_ros.msg import ActionChunk as ActionChunkMsg
    from vla_ros.ros.chunk_msg import chunk_to_msg
    from vla_ros.ros.nodes.executor_node import ExecutorNode
    from vla_ros.runtime_config import load_runtime_config

    base = load_runtime_config("franka")
    cfg = override(base, {"executor": {"rate_hz": rate_hz}})
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = ExecutorNode(cfg, context=ctx)
        io = rclpy.create_node("vla_policy", context=ctx)  # plays the policy node: the executor takes its chunks
        pub = io.create_publisher(ActionChunkMsg, cfg.executor.chunk_topic, 10)
        ex = SingleThreadedExecutor(context=ctx)  # as the node runs in production: spin() on its own thread
        ex.add_node(node)
        ex.add_node(io)
        spinner = threading.Thread(target=ex.spin, daemon=True)
        spinner.start()
        end, seq = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            now = io.get_clock().now().nanoseconds * 1e-9
            pub.publish(chunk_to_msg(_chunk(now, 0.5, 0.0, 16, 0.1, seq), "fr3_link0"))
            seq += 1
            time.sleep(0.2)
        ex.shutdown()
        spinner.join(timeout=2.0)
        ticks = list(node.tick_times_s)[5:]
        node.destroy_node()
        io.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    return ticks


def seam(mode: str, n_chunks: int = 30) -> tuple[float, float]:
    """Largest command-to-command jump around chunk boundaries vs the nominal per-tick motion, when each new
    chunk disagrees with the previous one by 1 cm and arrives 150 ms after its observation."""
    rate, dt, step = 50.0, 0.1, 0.01  # 10 cm/s nominal motion
    ex = Executor(from_dict(ExecutorConfig, {"rate_hz": rate, "mode": mode, "base_frame": "base", "blend_steps": 3,
                                             "safety": {"max_step_m": 1.0, "max_speed_m_s": 100.0,
                                                        "workspace_min_m": [-5, -5, -5], "workspace_max_m": [5, 5, 5],
                                                        "max_chunk_jump_m": 1.0}}))
    state = {"t": 0.0, "prev": None}
    jumps, boundary_ticks, x_true = [], set(), 0.4

    def play_until(t_end: float) -> None:
        while state["t"] < t_end:
            cmd = ex.tick(state["t"])
            if cmd.target is not None:
                p = cmd.target.position_m[0, 0]
                if state["prev"] is not None:
                    jumps.append(abs(p - state["prev"]))
                state["prev"] = p
            state["t"] += 1.0 / rate

    for k in range(n_chunks):
        stamp = state["t"]
        play_until(stamp + 0.15)  # inference latency: the chunk arrives 150 ms after its observation
        offset = 0.01 * (1 if k % 2 else -1)
        ex.on_chunk(_chunk(stamp, x_true + step * (stamp / dt), step, 8, dt, k, offset), state["t"])
        boundary_ticks.add(len(jumps))
        play_until(stamp + 0.3)
    nominal = step / dt / rate
    around = [jumps[i] for b in boundary_ticks for i in range(b, min(b + 3, len(jumps)))]
    return float(np.max(around)), nominal


def run(device: str = "cpu", quick: bool = False) -> dict:
    from vla_ros.ros.bench.endtoend import one_method, rate_figures

    out = {}
    for hz in (50, 100, 200):
        out.update(rate_figures(f"rate_{hz}hz", control_ticks(hz, 2.0 if quick else 6.0), hz))
    # the headroom proof asked of the executor: 200 Hz while a policy infers in the same process (the heaviest tiny
    # model's Python holds the GIL longest) and the synthetic robot streams 640x480 RGB-D at 30 Hz
    loaded = one_method(WITH_POLICY, 3.0 if quick else 10.0, executor_rate_hz=200)
    out.update({k.removeprefix(WITH_POLICY + ".executor_").replace("hz.", "hz_with_policy."): v
                for k, v in loaded.items() if ".executor_" in k})
    for mode in ("splice", "ensemble"):
        worst, nominal = seam(mode)
        out[f"seam_{mode}.max_jump_mm"] = scalar(1e3 * worst, "mm", nominal_step_mm=round(1e3 * nominal, 3),
                                                 ratio_to_nominal=round(worst / nominal, 3))
    return out
