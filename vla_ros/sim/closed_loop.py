"""A policy in closed loop with the simulator in one process, on simulated time: the runtime's own executor
(chunk splicing/ensembling, interpolation, safety) and Franka gripper mapping between the policy and the
environment, without DDS in between. `vla-ros demo` runs the same loop over ROS 2; this one is for the
ablation (hundreds of episodes) and for tests. Inference takes no simulated time here.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vla_ros.adapters.franka import FrankaAdapter
from vla_ros.core.chunking import Target
from vla_ros.core.constants import MODALITY_SETS
from vla_ros.core.executor import Executor

EVAL_SEED_OFFSET = 100_000  # evaluation episodes never reuse a demonstration's seed


@dataclass
class EpisodeResult:
    seed: int
    task: str
    instruction: str
    success: bool
    time_s: float  # simulated time until success (or the limit)
    inference_ms: list[float] = field(default_factory=list)
    modalities: list[str] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # camera images at the policy rate, when recorded

    def summary(self) -> dict:
        return {"seed": self.seed, "task": self.task, "instruction": self.instruction, "success": self.success,
                "time_s": round(self.time_s, 3), "inferences": len(self.inference_ms),
                "inference_ms_median": float(np.median(self.inference_ms)) if self.inference_ms else None,
                "modalities": sorted(set(self.modalities))}


def _measured(env) -> Target:
    pose = env.ee_pose()
    return Target(pose[None, :3], pose[None, 3:], np.ones(1))


def run_episode(env, policy, runtime_cfg, seed: int, task: str, modalities: str = "rgbd_pose",
                max_time_s: float | None = None, record: bool = False) -> EpisodeResult:
    """One episode: the policy at `runtime_cfg.policy.rate_hz`, the executor at `runtime_cfg.executor.rate_hz`.
    Ends at the first success or after max_time_s (default: the environment's max_steps * dt_s). Torch's RNG is
    seeded with `seed`, so a sampling policy (π0's flow-matching noise) repeats a seeded episode exactly, whatever
    ran before it."""
    import torch

    if modalities not in MODALITY_SETS:
        raise ValueError(f"modalities: {modalities!r} is not one of {list(MODALITY_SETS)}")
    torch.manual_seed(seed)
    obs = env.reset(seed, task)
    policy.reset()
    executor = Executor(runtime_cfg.executor)
    gripper = FrankaAdapter(runtime_cfg.adapter)  # the simulator is a Franka (TypeError for another robot's config)
    tick_s = 1.0 / runtime_cfg.executor.rate_hz
    every = max(1, int(round(runtime_cfg.executor.rate_hz / runtime_cfg.policy.rate_hz)))
    limit = max_time_s if max_time_s is not None else env.config.max_steps * env.config.dt_s
    result = EpisodeResult(seed, task, env.instruction, False, limit)
    tick = 0
    while env.time_s < limit:
        now = env.time_s
        if tick % every == 0:
            obs = env.observation() if tick else obs
            t0 = time.perf_counter()
            chunk = policy.infer(obs, MODALITY_SETS[modalities])
            result.inference_ms.append(1e3 * (time.perf_counter() - t0))
            result.modalities.append("+".join(chunk.modalities))
            chunk.frame_id, chunk.seq = runtime_cfg.executor.base_frame, tick
            executor.on_chunk(chunk, now, _measured(env))
            if record:
                result.frames.append(obs.cameras[0].rgb)
        cmd = executor.tick(now, _measured(env))
        if cmd.kind == "move":
            env.set_target(cmd.target.position_m[0], cmd.target.quat_xyzw[0])
            kind, goal = gripper.gripper_goal(0, float(cmd.target.gripper[0]))
            if kind is not None:
                env.set_gripper_width(goal["width"])
        env.step(env.target_pos, None, None, dt_s=tick_s, render=False)
        tick += 1
        if env.success():
            result.success, result.time_s = True, env.time_s
            break
    return result


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0 and n, unlike the normal approximation)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def evaluate(policy, runtime_cfg, tasks, episodes_per_task: int, modalities: str = "rgbd_pose",
             seed: int = EVAL_SEED_OFFSET, env=None, progress: bool = False) -> dict:
    """Success per task (with a 95% interval) over `episodes_per_task` seeded episodes each."""
    from vla_ros.sim.env import SimConfig, SimEnv

    own = env is None
    env = env or SimEnv(SimConfig())
    per_task, episodes = {}, []
    try:
        for ti, task in enumerate(tasks):
            wins = 0
            for k in range(episodes_per_task):
                r = run_episode(env, policy, runtime_cfg, seed + 1000 * ti + k, task, modalities)
                wins += r.success
                episodes.append(r.summary())
                if progress:
                    print(f"\r{task}: {wins}/{k + 1}", end="", flush=True)
            lo, hi = wilson_interval(wins, episodes_per_task)
            per_task[task] = {"successes": wins, "episodes": episodes_per_task,
                              "success_rate": wins / episodes_per_task, "ci95": [lo, hi]}
            if progress:
                print()
    finally:
        if own:
            env.close()
    n = sum(t["episodes"] for t in per_task.values())
    wins = sum(t["successes"] for t in per_task.values())
    return {"modalities": modalities, "per_task": per_task,
            "overall": {"successes": wins, "episodes": n, "success_rate": wins / n if n else 0.0,
                        "ci95": list(wilson_interval(wins, n))}, "episodes": episodes}
