"""Offline evaluation: replay a bag's observations in time order through a policy and compare each chunk with
the commands recorded in the bag (the robot's commanded end-effector targets, per the robot config)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.chunking import step_times
from vla_ros.core.constants import MODALITY_SETS
from vla_ros.core.transforms import quat_angle_rad
from vla_ros.data.bags import Bag, BagError
from vla_ros.eval.bag_observations import BagObservations, iterate


class EvalError(RuntimeError):
    pass


@dataclass
class EvalRun:
    modalities: str
    chunks: list = field(default_factory=list)
    model_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    gripper: list = field(default_factory=list)  # recorded (stamp, opening 0..1)


def _interp_commands(commands: list[tuple[float, np.ndarray]], t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times = np.array([c[0] for c in commands])
    poses = np.stack([c[1] for c in commands])
    pos = np.stack([np.interp(t, times, poses[:, i]) for i in range(3)], -1)
    idx = np.clip(np.searchsorted(times, t), 0, len(times) - 1)
    return pos, poses[idx, 3:]


def run_policy(bag_path: str, cfg, policy, modalities: str, progress: bool = True, msg_dirs=None
               ) -> tuple[EvalRun, list]:
    feeder = BagObservations(cfg.observation, cfg.adapter.command_topics[0] if cfg.adapter.robot == "franka" else "")
    run = EvalRun(modalities)
    policy.reset()
    with Bag(bag_path, msg_dirs) as bag:
        total = sum(i.count for t, i in bag.topics().items() if t == cfg.observation.cameras[0].rgb_topic)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=f"eval {modalities}", unit="frame", dynamic_ncols=True)
        t0 = time.perf_counter()
        for _, obs in iterate(bag, feeder):
            m0 = time.perf_counter()
            chunk = policy.infer(obs, MODALITY_SETS[modalities])
            run.model_s.append(time.perf_counter() - m0)
            run.chunks.append(chunk)
            if bar is not None:
                bar.update(1)
        run.wall_s = time.perf_counter() - t0
        if bar is not None:
            bar.close()
    run.gripper = feeder.gripper
    return run, feeder.commands


def metrics(run: EvalRun, commands) -> dict:
    if not run.chunks:
        raise EvalError("no valid observation in the bag (check the config's topics with `vla-ros bag-info --config`)")
    out = {"frames": len(run.chunks), "modalities_used": sorted({"+".join(c.modalities) for c in run.chunks}),
           "eval_fps": len(run.chunks) / run.wall_s if run.wall_s else None,
           "model_fps": len(run.model_s) / sum(run.model_s) if run.model_s else None,
           "latency_ms_median": 1e3 * float(np.median(run.model_s)),
           "latency_ms_p99": 1e3 * float(np.percentile(run.model_s, 99))}
    # chunk self-consistency: predictions for the same time from consecutive chunks
    diffs = []
    for a, b in zip(run.chunks, run.chunks[1:]):
        ta, tb = step_times(a), step_times(b)
        common = tb[tb <= ta[-1]]
        if common.size:
            pa = np.stack([np.interp(common, ta, a.position_m[:, 0, i]) for i in range(3)], -1)
            pb = np.stack([np.interp(common, tb, b.position_m[:, 0, i]) for i in range(3)], -1)
            diffs.append(np.linalg.norm(pa - pb, axis=-1).mean())
    out["chunk_self_consistency_m"] = float(np.mean(diffs)) if diffs else None
    if not commands:
        out["note"] = "no recorded commands in the bag: accuracy metrics need the robot's command topic"
        return out
    t = np.concatenate([step_times(c) for c in run.chunks])
    pred_pos = np.concatenate([c.position_m[:, 0] for c in run.chunks])
    pred_q = np.concatenate([c.quat_xyzw[:, 0] for c in run.chunks])
    rec_pos, rec_q = _interp_commands(commands, t)
    err = pred_pos - rec_pos
    out["per_dim"] = {axis: {"mae_m": float(np.abs(err[:, i]).mean()),
                             "rmse_m": float(np.sqrt((err[:, i] ** 2).mean()))} for i, axis in enumerate("xyz")}
    if run.gripper:
        gt = np.array([g[0] for g in run.gripper])
        gv = np.array([g[1] for g in run.gripper])
        rec_open = gv[np.clip(np.searchsorted(gt, t), 0, len(gt) - 1)] > 0.5
        pred_open = np.concatenate([c.gripper[:, 0] for c in run.chunks]) > 0.5
        out["gripper_accuracy"] = float(np.mean(rec_open == pred_open))
    else:
        out["gripper_accuracy"] = None
        out["gripper_note"] = "no gripper state in the bag (observation.gripper_topic)"
    ang = quat_angle_rad(pred_q, rec_q)
    out["rotation"] = {"mae_rad": float(ang.mean()), "rmse_rad": float(np.sqrt((ang ** 2).mean()))}
    return out


def evaluate(bag_path: str, cfg, checkpoint: str, modalities: list[str], device: str = "cpu",
             progress: bool = True) -> tuple[dict, dict]:
    """-> (report, series for plots) with one entry per modality set (A/B on the same bag)."""
    from vla_ros.policies.factory import load_policy

    try:
        policy = load_policy(checkpoint, device)
    except Exception as exc:
        raise EvalError(f"checkpoint {checkpoint}: {exc}") from None
    report = {"bag": str(bag_path), "checkpoint": str(checkpoint), "method": policy.method, "runs": {}}
    series = {}
    for mods in modalities:
        try:
            run, commands = run_policy(bag_path, cfg, policy, mods, progress)
        except BagError as exc:
            raise EvalError(str(exc)) from None
        report["runs"][mods] = metrics(run, commands)
        series[mods] = (run, commands)
    return report, series
