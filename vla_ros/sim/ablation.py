"""The ablation table: each row is a (checkpoint, test-time modalities) pair, evaluated in closed loop on the
same seeded episodes of every task (in-process loop, see closed_loop.py), success with a 95% interval, and each
spatial row paired with its own non-spatial row on those same seeds (exact McNemar test). With the camera-shift
column, every row is evaluated a second time with the camera outside the training range (SHIFTED_CAMERA).

Rows are cached in `ablation.json` under a key of everything that decides the outcome: the checkpoint folder's
weights, config and norm stats (sha256), the runtime config, the tasks, episodes, seed and modalities, and
EVAL_VERSION (raised whenever the simulator, executor, safety or adapter code changes what an episode does). A
row whose key is unchanged is not run again, so the table can be built over several runs (`--rows` runs some);
a row kept from an earlier key is shown with the version it was evaluated with, never silently reused.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from math import comb
from pathlib import Path

from vla_ros.core.config import to_dict
from vla_ros.sim.checkpoints import ROOT
from vla_ros.sim.tasks import SHIFTED_CAMERA, CameraRange

CAMERAS = {"tasks": CameraRange(), "shifted": SHIFTED_CAMERA}  # the column -> the camera range it runs with

EVAL_VERSION = 2  # 2: per-episode torch seed, ObservationFeed in the simulator, the clamp fix (1: fbf61e2)


@dataclass(frozen=True)
class Row:
    label: str
    checkpoint: str  # bundled folder name
    modalities: str  # at test time
    against: str = ""  # label of the row it is paired with (its non-spatial counterpart)


ROWS = [
    Row("baseline, RGB", "sim_baseline", "rgb"),
    Row("FALCON trained and tested RGB-only", "sim_falcon_rgb", "rgb", "baseline, RGB"),
    Row("FALCON, RGB-D", "sim_falcon", "rgbd", "FALCON trained and tested RGB-only"),
    Row("FALCON, RGB-D + pose", "sim_falcon", "rgbd_pose", "FALCON trained and tested RGB-only"),
    Row("FALCON trained with depth, tested RGB-only", "sim_falcon", "rgb", "FALCON trained and tested RGB-only"),
    Row("Spatial Forcing (RGB at inference)", "sim_spatial_forcing", "rgb", "baseline, RGB"),
    Row("SpatialVLA, sensor depth", "sim_spatialvla", "rgbd", "baseline, RGB"),
    Row("pi0, RGB", "sim_pi0", "rgb"),
    Row("pi0 + Spatial Forcing (RGB at inference)", "sim_pi0_sf", "rgb", "pi0, RGB"),
]


CHECKPOINT_FILES = ("model.safetensors", "config.yaml", "norm_stats.json", "tokenizer.json")


def weights_sha(folder: str | Path) -> str:
    """sha256 (16 hex) of what loading the checkpoint reads: weights, config, norm stats, tokenizer."""
    h = hashlib.sha256()
    for name in CHECKPOINT_FILES:
        path = Path(folder) / name
        if path.is_file():
            h.update(name.encode())
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def row_key(row: Row, sha: str, runtime_sha: str, tasks, episodes_per_task: int, seed: int,
            camera: str = "tasks") -> dict:
    key = {"checkpoint": row.checkpoint, "modalities": row.modalities, "checkpoint_sha": sha,
           "runtime_sha": runtime_sha, "tasks": list(tasks), "episodes_per_task": episodes_per_task, "seed": seed,
           "eval_version": EVAL_VERSION}
    return key if camera == "tasks" else {**key, "camera": camera}  # the tasks' camera: keys of earlier tables


def mcnemar_exact(a: list[bool], b: list[bool]) -> dict:
    """Paired outcomes of two rows on the same seeds: the discordant counts (a won where b failed, and the
    reverse) and the exact two-sided McNemar p-value (binomial test of the discordant pairs at 1/2)."""
    if len(a) != len(b):
        raise ValueError(f"paired rows need the same episodes: {len(a)} != {len(b)}")
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    n, k = only_a + only_b, min(only_a, only_b)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)
    return {"only_this": only_a, "only_other": only_b, "p_value": p}


def _camera(r: dict) -> str:
    return r.get("camera", "tasks")


def _cached(old: list[dict], label: str, key: dict) -> dict | None:
    for r in old:
        if r.get("row") == label and _camera(r) == key.get("camera", "tasks") and \
                all(r.get(k) == v for k, v in key.items()):
            return r
    return None


def run_ablation(episodes_per_task: int, tasks, out_dir: str | Path, checkpoints: str | Path = ROOT,
                 seed: int | None = None, rows=None, progress: bool = True, cameras=("tasks",)) -> dict:
    """Evaluate `rows` (default: all) under each camera column of `cameras` ("tasks", "shifted"), reusing cached
    rows; write ablation.json and ablation.md."""
    import torch

    from vla_ros.policies.checkpoint_io import load_policy
    from vla_ros.runtime_config import load_runtime_config
    from vla_ros.sim.closed_loop import EVAL_SEED_OFFSET, evaluate
    from vla_ros.sim.env import SimConfig, SimEnv

    torch.set_num_threads(1)  # batch-1 inference: one thread is as fast and leaves the other core free
    seed = EVAL_SEED_OFFSET if seed is None else seed
    cfg = load_runtime_config("sim_franka")
    runtime_sha = hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "ablation.json"
    old = json.loads(cache.read_text()) if cache.is_file() else []
    results = {(r["row"], _camera(r)): r for r in old if (Path(checkpoints) / r.get("checkpoint", "") /
                                                          "model.safetensors").is_file()}  # checkpoint gone: not shown
    for camera in cameras:
        env = None
        try:
            for row in rows or ROWS:
                folder = Path(checkpoints) / row.checkpoint
                if not (folder / "model.safetensors").is_file():
                    print(f"{row.label}: skipped, {folder} has no weights", flush=True)
                    continue
                key = row_key(row, weights_sha(folder), runtime_sha, tasks, episodes_per_task, seed, camera)
                hit = _cached(old, row.label, key)
                if hit is not None:
                    results[(row.label, camera)] = hit
                    continue
                env = env or SimEnv(SimConfig(camera=CAMERAS[camera]))
                t0 = time.monotonic()
                r = evaluate(load_policy(folder), cfg, tasks, episodes_per_task, row.modalities, seed, env)
                r.update({"row": row.label, **key, "wall_s": time.monotonic() - t0})
                results[(row.label, camera)] = r
                if progress:
                    print(f"{row.label} ({camera} camera): {r['overall']['successes']}/{r['overall']['episodes']}",
                          flush=True)
                cache.write_text(json.dumps(list(results.values()), indent=1))
        finally:
            if env is not None:
                env.close()
    ordered = [results[(r.label, "tasks")] for r in ROWS if (r.label, "tasks") in results]
    shifted = {label: r for (label, cam), r in results.items() if cam == "shifted"}
    (out / "ablation.md").write_text(markdown_table(ordered, tasks, shifted) + "\n" + paired_table(ordered) +
                                     ("\n" + paired_table(list(shifted.values()), "camera shifted") if shifted
                                      else ""))
    return {"rows": ordered, "shifted": list(shifted.values()), "table": str(out / "ablation.md")}


def _cell(v: dict) -> str:
    return f"{v['successes']}/{v['episodes']} ({100 * v['success_rate']:.0f}%, [{100 * v['ci95'][0]:.0f}, " \
           f"{100 * v['ci95'][1]:.0f}])"


def markdown_table(results: list[dict], tasks, shifted: dict[str, dict] | None = None) -> str:
    """One line per row; a row evaluated with an earlier EVAL_VERSION says so in its last column. `shifted`
    (row label -> its result with the camera outside the training range) adds the camera-shift column."""
    shift_col = " all, camera shifted |" if shifted else ""
    head = "| variant | " + " | ".join(tasks) + " | all |" + shift_col + " evaluated |\n|---|" + \
        "---|" * (len(tasks) + 2 + bool(shifted)) + "\n"
    rows = [[r["row"], *(_cell(r["per_task"][t]) if t in r["per_task"] else "-" for t in tasks), _cell(r["overall"]),
             *([_cell(shifted[r["row"]]["overall"]) if r["row"] in shifted else "-"] if shifted else []),
             "this version" if r.get("eval_version") == EVAL_VERSION else
             f"earlier code ({r.get('evaluated_at', 'version ' + str(r.get('eval_version', 1)))})"] for r in results]
    return head + "".join("| " + " | ".join(row) + " |\n" for row in rows)


def paired_table(results: list[dict], column: str = "") -> str:
    """Each row with an `against` row that ran on the same seeds: discordant episodes and McNemar's p; `column`
    names the camera column in the header when it is not the tasks' one."""
    by_label = {r["row"]: r for r in results}
    lines = []
    for row in ROWS:
        this, other = by_label.get(row.label), by_label.get(row.against)
        if this is None or other is None:
            continue
        key = [(e["task"], e["seed"]) for e in this["episodes"]]
        if key != [(e["task"], e["seed"]) for e in other["episodes"]]:
            continue  # not the same episodes: no paired test
        t = mcnemar_exact([e["success"] for e in this["episodes"]], [e["success"] for e in other["episodes"]])
        p = f"{t['p_value']:.3f}" if t["p_value"] >= 0.001 else "< 0.001"
        lines.append(f"| {row.label} | {row.against} | {t['only_this']} | {t['only_other']} | {p} |\n")
    if not lines:
        return ""
    suffix = f" ({column})" if column else ""
    return (f"| row{suffix} | paired with | solved only by the row | solved only by the other | McNemar p (exact) |\n"
            "|---|---|---|---|---|\n" + "".join(lines))
