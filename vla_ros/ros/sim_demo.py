"""The closed loop over ROS 2: the MuJoCo simulator node, the lifecycle policy node and the executor with the
Franka adapter (actuating), all talking over DDS on loopback in one process, plus a small client node that
runs episodes through the executor's services (pause, reset, resume), as an operator would."""
from __future__ import annotations

import time

import rclpy
from std_srvs.srv import Trigger

from vla_ros.core.config import override
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config
from vla_ros.sim.closed_loop import EpisodeResult

SETTLE_S = 0.3  # simulated time after a reset before the executor listens again (fresh frames, fresh tf)


class SimDemo:
    """Args: checkpoint (policy folder), modalities (rgb | rgbd | rgbd_pose), config (robot config, default
    sim_franka), sim (SimNodeConfig), context (rclpy context)."""

    def __init__(self, checkpoint: str, modalities: str = "rgbd_pose", config: str | RuntimeConfig = "sim_franka",
                 sim=None, context=None):
        from vla_ros.ros.launch_set import RobotStack
        from vla_ros.ros.nodes.sim_node import SimNode, SimNodeConfig

        cfg = load_runtime_config(config) if isinstance(config, str) else config
        cfg = override(cfg, {"policy": {"modalities": modalities}})
        self.cfg = cfg
        self.sim = SimNode(sim or SimNodeConfig(), context=context)
        self.stack = RobotStack(cfg, checkpoint=checkpoint, actuate=True, context=context, device="cpu")
        self.node = rclpy.create_node("vla_demo", context=context)
        self.clients = {n: self.node.create_client(Trigger, f"/vla_executor/{n}") for n in ("pause", "reset", "resume")}
        for n in (self.sim, self.node):
            self.stack.ex.add_node(n)

    def start(self) -> bool:
        return self.stack.start()

    def _call(self, name: str, timeout_s: float = 5.0) -> None:
        client = self.clients[name]
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"executor service /vla_executor/{name} is not available")
        fut = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not fut.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"executor service /vla_executor/{name} did not answer in {timeout_s} s")
            time.sleep(0.005)
        if not fut.result().success:
            raise RuntimeError(f"/vla_executor/{name}: {fut.result().message}")

    def _wait_sim(self, seconds: float, wall_limit_s: float) -> None:
        start, end = self.sim.sim_time_s, time.monotonic() + wall_limit_s
        while self.sim.sim_time_s - start < seconds and time.monotonic() < end:
            time.sleep(0.01)

    def run_episode(self, seed: int, task: str, max_time_s: float = 15.0, record: bool = False) -> EpisodeResult:
        """Reset the scene, let the policy act until success or max_time_s of simulated time."""
        self._call("pause")
        instruction = self.sim.reset(seed, task)
        self._wait_sim(SETTLE_S, 5.0)
        self._call("reset")
        pol = self.stack.policy
        chunks_before = pol.stats["chunks"]
        self._call("resume")
        result = EpisodeResult(seed, task, instruction, False, max_time_s)
        t0, wall_end = self.sim.sim_time_s, time.monotonic() + 4 * max_time_s + 10
        last = None
        while time.monotonic() < wall_end:
            elapsed = self.sim.sim_time_s - t0
            if self.sim.success():
                result.success, result.time_s = True, elapsed
                break
            if elapsed >= max_time_s:
                break
            frame = self.sim.last_frame
            if record and frame is not None and frame is not last:
                result.frames.append(frame)
                last = frame
            time.sleep(0.02)
        else:
            result.time_s = self.sim.sim_time_s - t0  # the machine ran far slower than real time
        n = min(pol.stats["chunks"] - chunks_before, len(pol.latency_s))
        result.inference_ms = [1e3 * v for v in list(pol.latency_s)[len(pol.latency_s) - n:]] if n > 0 else []
        result.modalities = [m.split("modality_", 1)[1] for m in pol.stats if m.startswith("modality_")]
        return result

    def counters(self) -> dict:
        return {"executor": dict(self.stack.executor_node.core.counters), "sim": dict(self.sim.counters),
                "policy": dict(self.stack.policy.stats)}

    def stop(self) -> None:
        self.stack.stop()  # stops the executor that spins sim and node too, before they are destroyed
        self.sim.destroy_node()
        self.node.destroy_node()
