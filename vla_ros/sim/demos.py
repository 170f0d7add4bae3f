"""Expert demonstrations straight into the training dataset format (docs/dataset_format.md).

`python -m vla_ros.sim.demos --out data/sim_demos --episodes 150` records the scripted expert on every task
(round robin, seeds from --seed), keeping only successful episodes. Frame t holds the observation at control
step t and the absolute target the expert commanded right after it: the target position (m), orientation
(quaternion xyzw) and gripper (1 open .. 0 closed) of one arm ("arm"); proprio = the 7 Franka joint angles and
a finger joint.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vla_ros.sim.env import PROPRIO_NAMES, SimConfig, SimEnv
from vla_ros.sim.expert import Perturbation, rollout
from vla_ros.sim.scene import CAMERA
from vla_ros.sim.tasks import TASKS, WIDE_CAMERA


def episode_arrays(frames) -> dict[str, np.ndarray]:
    """(observation, target) pairs -> the dataset's per-episode arrays."""
    obs = [o for o, _ in frames]
    cams = [o.cameras[0] for o in obs]
    return {
        "stamp_s": np.array([o.stamp_s for o in obs]),
        f"rgb__{CAMERA}": np.stack([c.rgb for c in cams]),
        f"depth_m__{CAMERA}": np.stack([c.depth_m for c in cams]).astype(np.float32),
        f"K__{CAMERA}": np.stack([c.K for c in cams]),
        f"T_base_camera__{CAMERA}": np.stack([c.T_base_camera for c in cams]),
        "proprio": np.stack([o.proprio for o in obs]).astype(np.float32),
        "ee_pose": np.stack([o.ee_pose for o in obs]),
        "action_position_m": np.stack([t.position_m for _, t in frames])[:, None],
        "action_quat_xyzw": np.stack([t.quat_xyzw for _, t in frames])[:, None],
        "action_gripper": np.array([[t.gripper] for _, t in frames]),
    }


def generate(out_dir: str | Path, episodes: int, tasks: tuple[str, ...] = TASKS, seed: int = 0,
             config: SimConfig | None = None, progress: bool = True, perturb: Perturbation | None = None) -> dict:
    """Writes `episodes` successful expert episodes (with `perturb`: pushed off the expert's path now and then,
    the expert's corrections recorded); returns counts and timings."""
    from vla_ros.data.dataset import DatasetWriter

    env = SimEnv(config or SimConfig())
    writer = DatasetWriter(out_dir, [CAMERA], ["arm"], list(PROPRIO_NAMES), env.config.dt_s,
                           (env.config.height, env.config.width),
                           source={"generator": "vla_ros.sim.demos", "seed": seed, "tasks": list(tasks),
                                   "camera": vars(env.config.camera), "perturb": vars(perturb) if perturb else None})
    t0, tried, kept, frames_total, s = time.monotonic(), 0, 0, 0, seed
    per_task = {t: 0 for t in tasks}
    while kept < episodes:
        task = tasks[kept % len(tasks)]
        ok, frames = rollout(env, s, task, record=True, perturb=perturb)
        s, tried = s + 1, tried + 1
        if not ok:
            continue
        writer.add_episode(episode_arrays(frames), env.instruction, task, True)
        kept, frames_total, per_task[task] = kept + 1, frames_total + len(frames), per_task[task] + 1
        if progress:
            print(f"\r{kept}/{episodes} episodes, {frames_total} frames", end="", flush=True)
    writer.close()
    env.close()
    if progress:
        print()
    return {"episodes": kept, "tried": tried, "frames": frames_total, "per_task": per_task,
            "seconds": time.monotonic() - t0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--episodes", type=int, default=150)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--perturb", action="store_true",
                    help="push the commanded pose off the expert's path now and then (recovery demonstrations)")
    ap.add_argument("--wide-camera", action="store_true", help="the wider camera range (WIDE_CAMERA in tasks.py)")
    args = ap.parse_args(argv)
    sim = SimConfig(width=args.width, height=args.height, **({"camera": WIDE_CAMERA} if args.wide_camera else {}))
    info = generate(args.out, args.episodes, tuple(args.tasks), args.seed, sim,
                    perturb=Perturbation() if args.perturb else None)
    print(info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
