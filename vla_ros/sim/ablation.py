"""The ablation table: each row is a (checkpoint, test-time modalities) pair, evaluated in closed loop on the
same seeded episodes of every task (in-process loop, see closed_loop.py), success with a 95% interval."""
from __future__ import annotations

import json
import time
from pathlib import Path

from vla_ros.sim.checkpoints import ROOT

# (row label, bundled checkpoint folder, modalities at test time)
ROWS = [
    ("baseline, RGB", "sim_baseline", "rgb"),
    ("FALCON trained and tested RGB-only", "sim_falcon_rgb", "rgb"),
    ("FALCON, RGB-D", "sim_falcon", "rgbd"),
    ("FALCON, RGB-D + pose", "sim_falcon", "rgbd_pose"),
    ("FALCON trained with depth, tested RGB-only", "sim_falcon", "rgb"),
    ("Spatial Forcing (RGB at inference)", "sim_spatial_forcing", "rgb"),
    ("SpatialVLA, sensor depth", "sim_spatialvla", "rgbd"),
]


def run_ablation(episodes_per_task: int, tasks, out_dir: str | Path, checkpoints: str | Path = ROOT,
                 seed: int | None = None, rows=None, progress: bool = True) -> dict:
    import torch

    from vla_ros.policies.checkpoint_io import load_policy
    from vla_ros.runtime_config import load_runtime_config
    from vla_ros.sim.closed_loop import EVAL_SEED_OFFSET, evaluate
    from vla_ros.sim.env import SimConfig, SimEnv

    torch.set_num_threads(1)  # batch-1 inference: one thread is as fast and leaves the other core free
    cfg = load_runtime_config("sim_franka")
    env = SimEnv(SimConfig())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for label, folder, mods in rows or ROWS:
            t0 = time.monotonic()
            policy = load_policy(Path(checkpoints) / folder)
            r = evaluate(policy, cfg, tasks, episodes_per_task, mods, EVAL_SEED_OFFSET if seed is None else seed,
                         env)
            r.update({"row": label, "checkpoint": folder, "wall_s": time.monotonic() - t0})
            results.append(r)
            if progress:
                print(f"{label}: {r['overall']['successes']}/{r['overall']['episodes']}", flush=True)
            (out / "ablation.json").write_text(json.dumps(results, indent=1))
    finally:
        env.close()
    (out / "ablation.md").write_text(markdown_table(results, tasks))
    return {"rows": results, "table": str(out / "ablation.md")}


def markdown_table(results: list[dict], tasks) -> str:
    head = "| variant | " + " | ".join(tasks) + " | all |\n|---|" + "---|" * (len(tasks) + 1) + "\n"

    def cell(v):
        return f"{v['successes']}/{v['episodes']} ({100 * v['success_rate']:.0f}%, [{100 * v['ci95'][0]:.0f}, " \
               f"{100 * v['ci95'][1]:.0f}])"

    rows = [[r["row"], *(cell(r["per_task"][t]) for t in tasks), cell(r["overall"])] for r in results]
    return head + "".join("| " + " | ".join(row) + " |\n" for row in rows)
