"""Offline evaluation: replay a bag's observations in time order through a policy and compare every chunk with the
actions recorded in the bag (vla_ros.data.recorded_actions: the robot's command topics per config, or the
executor's commanded poses).

Comparison is in the policy's own action space, per arm: [x, y, z (m), rotation vector relative to the policy's
reference orientation (rad), gripper (0..1)], each chunk step against the recorded target interpolated at that
step's time (steps outside the recorded span are not scored). Reported: per-dimension MAE/RMSE, the geodesic
rotation error, gripper accuracy (open/closed at 0.5), position error per horizon step, chunk self-consistency
(how much consecutive chunks disagree about the same instants) and inference latency.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.actions import poses_to_actions
from vla_ros.core.chunking import Target, resolve_reference, step_times
from vla_ros.core.constants import MODALITY_SETS, REF_ABSOLUTE, REF_DELTA_MEASURED
from vla_ros.core.transforms import quat_angle_rad
from vla_ros.data.bag_observations import BagObservations, replay
from vla_ros.data.bags import Bag, BagError
from vla_ros.data.prefetch import prefetch
from vla_ros.data.recorded_actions import RecordedActions, RecordedActionsError, actions_in_bag

DIMS = ("x", "y", "z", "rx", "ry", "rz", "gripper")
UNITS = ("m", "m", "m", "rad", "rad", "rad", "")


class EvalError(RuntimeError):
    """Evaluation cannot run; the message names the bag, topic or checkpoint."""


@dataclass
class EvalRun:
    modalities: str
    chunks: list = field(default_factory=list)  # absolute ActionChunks
    model_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    rejected: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    unresolved: int = 0  # delta chunks without a pose to apply them to


def run_policy(bag_path, cfg, policy, modalities: str, actions_source: str = "auto", progress: bool = True,
               msg_dirs=None, stride: int = 1, max_frames: int = 0) -> tuple[EvalRun, RecordedActions]:
    """One pass over the bag with the policy restricted to `modalities` (a MODALITY_SETS key)."""
    feeder = BagObservations(cfg.observation)
    run = EvalRun(modalities)
    policy.reset()
    with Bag(bag_path, msg_dirs, strict=False) as bag:
        infos = bag.topics()
        present = {t for t, i in infos.items() if i.count > 0}
        missing = [t for t in feeder.required_topics() if t not in present]
        if missing:
            raise EvalError(f"{bag_path}: required topic(s) {missing} missing or empty (robot config {cfg.robot!r})")
        try:
            actions = actions_in_bag(bag, cfg, actions_source)
        except RecordedActionsError as exc:
            raise EvalError(f"{bag_path}: {exc}; nothing to compare the policy with") from None
        total = infos[cfg.observation.cameras[0].rgb_topic].count // stride
        total = min(total, max_frames) if max_frames else total
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=f"eval-bag {modalities}", unit="frame", dynamic_ncols=True)
        t0 = time.perf_counter()
        # Decoding and assembly run a few frames ahead on their own thread, overlapped with inference.
        for _, obs in prefetch(replay(bag, feeder, actions, stride)):
            m0 = time.perf_counter()
            chunk = policy.infer(obs, MODALITY_SETS[modalities])
            run.model_s.append(time.perf_counter() - m0)
            absolute = _absolute(chunk, obs)
            if absolute is None:
                run.unresolved += 1
            else:
                run.chunks.append(absolute)
            if bar is not None:
                bar.update(1)
            if max_frames and len(run.model_s) >= max_frames:
                break
        run.wall_s = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        run.problems = list(bag.problems)
    run.rejected = dict(feeder.rejected)
    try:
        actions.check()
    except RecordedActionsError as exc:
        raise EvalError(f"{bag_path}: {exc}; nothing to compare the policy with") from None
    return run, actions


def _absolute(chunk, obs):
    if chunk.reference == REF_ABSOLUTE:
        return chunk
    measured = None
    if chunk.reference == REF_DELTA_MEASURED and obs.ee_pose is not None:
        ee = np.asarray(obs.ee_pose).reshape(-1, 7)
        measured = Target(ee[:, :3], ee[:, 3:], np.ones(len(ee)))
    try:
        return resolve_reference(chunk, None, measured)
    except ValueError:
        return None


def _latency(model_s: list[float]) -> dict:
    ms = 1e3 * np.asarray(model_s)
    return {"median": float(np.median(ms)), "mean": float(ms.mean()), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def self_consistency(chunks: list) -> dict:
    """Mean disagreement of consecutive chunks at the instants both cover (positions interpolated along each,
    rotations at the earlier chunk's nearest step), over arms; `pairs`: chunk pairs that overlap."""
    pos_d, rot_d, pairs = [], [], 0
    for a, b in zip(chunks, chunks[1:]):
        ta, tb = step_times(a), step_times(b)
        common = tb[(tb >= ta[0]) & (tb <= ta[-1])]
        if not common.size:
            continue
        pairs += 1
        for arm in range(a.position_m.shape[1]):
            pa = np.stack([np.interp(common, ta, a.position_m[:, arm, i]) for i in range(3)], -1)
            pb = b.position_m[np.isin(tb, common), arm]
            pos_d.append(np.linalg.norm(pa - pb, axis=-1).mean())
            ja = np.abs(ta[None, :] - common[:, None]).argmin(1)
            rot_d.append(quat_angle_rad(a.quat_xyzw[ja, arm], b.quat_xyzw[np.isin(tb, common), arm]).mean())
    if not pos_d:
        return {"position_m": None, "rotation_rad": None, "pairs": 0}
    return {"position_m": float(np.mean(pos_d)), "rotation_rad": float(np.mean(rot_d)), "pairs": pairs}


def compare(run: EvalRun, actions: RecordedActions, ref_quat) -> dict:
    """Per-arm metrics of the run's chunks against the recorded actions."""
    if not run.chunks:
        return {}
    lo, hi = actions.span()
    T = run.chunks[0].horizon
    t = np.stack([step_times(c) for c in run.chunks])  # (N, T)
    inside = (t >= lo) & (t <= hi)
    if not inside.any():
        raise EvalError(f"no chunk step falls within the recorded actions' time span ({lo:.3f} .. {hi:.3f} s) on "
                        f"{actions.topics()}")
    pred_pos = np.stack([c.position_m for c in run.chunks])  # (N, T, A, 3)
    pred_q = np.stack([c.quat_xyzw for c in run.chunks])
    pred_g = np.stack([c.gripper for c in run.chunks])
    rec_pos, rec_q = actions.poses_at(t.reshape(-1))
    A = pred_pos.shape[2]
    rec_pos, rec_q = rec_pos.reshape(*t.shape, A, 3), rec_q.reshape(*t.shape, A, 4)
    rec_g = actions.gripper_at(t.reshape(-1), actions.gripper_lead_s)
    rec_g = None if rec_g is None else rec_g.reshape(*t.shape, A)
    pred = poses_to_actions(pred_pos, pred_q, pred_g, ref_quat)
    rec = poses_to_actions(rec_pos, rec_q, np.zeros_like(pred_g) if rec_g is None else rec_g, ref_quat)
    out = {}
    m = inside
    for a, arm in enumerate(actions.arms):
        err = (pred[..., a, :] - rec[..., a, :])[m]  # (M, 7)
        per_dim = {}
        for i, (d, unit) in enumerate(zip(DIMS, UNITS)):
            if d == "gripper" and rec_g is None:
                continue
            per_dim[d] = {"mae": float(np.abs(err[:, i]).mean()), "rmse": float(np.sqrt((err[:, i] ** 2).mean())),
                          "unit": unit}
        ang = quat_angle_rad(pred_q[..., a, :][m], rec_q[..., a, :][m])
        pos_err = np.linalg.norm(pred_pos[..., a, :] - rec_pos[..., a, :], axis=-1)
        step_mae = [float(pos_err[:, j][inside[:, j]].mean()) if inside[:, j].any() else None for j in range(T)]
        arm_out = {"scored_steps": int(m.sum()), "per_dim": per_dim,
                   "rotation_angle_rad": {"mae": float(ang.mean()), "rmse": float(np.sqrt((ang ** 2).mean()))},
                   "position_error_m_per_step": step_mae}
        if rec_g is not None:
            agree = (pred_g[..., a][m] > 0.5) == (rec_g[..., a][m] > 0.5)
            arm_out["gripper_accuracy"] = float(agree.mean())
        else:
            arm_out["gripper_accuracy"] = None
            arm_out["gripper_note"] = "the bag records no gripper command or state for this config"
        out[arm] = arm_out
    return out


def metrics(run: EvalRun, actions: RecordedActions, ref_quat) -> dict:
    if not run.chunks:
        why = "; ".join(f"{k} x{v}" for k, v in sorted(run.rejected.items(), key=lambda kv: -kv[1])[:3])
        if run.unresolved:
            why = f"{run.unresolved} delta chunks had no measured pose to apply them to"
        raise EvalError(f"no valid observation in the bag ({why or 'no primary camera frame'}); check the topics "
                        "with `vla-ros bag-info --config`")
    out = {"frames": len(run.model_s), "chunks_scored": len(run.chunks),
           "modalities_used": sorted({"+".join(c.modalities) for c in run.chunks}),
           "eval_fps": len(run.model_s) / run.wall_s if run.wall_s > 0 else None,
           "model_fps": len(run.model_s) / sum(run.model_s) if sum(run.model_s) > 0 else None,
           "latency_ms": _latency(run.model_s), "chunk_self_consistency": self_consistency(run.chunks),
           "actions_source": actions.source, "action_topics": actions.topics(), "recorded_actions": actions.count(),
           "skipped_actions": dict(actions.skipped),
           "arms": compare(run, actions, ref_quat), "rejected_observations": run.rejected, "problems": run.problems}
    return out


def evaluate(bag_path, cfg, checkpoint, modalities: list[str], device: str = "cpu", progress: bool = True,
             actions_source: str = "auto", msg_dirs=None, stride: int = 1, max_frames: int = 0,
             policy=None) -> tuple[dict, dict]:
    """-> (report, series for plots), one entry per modality set (A/B on the same bag and checkpoint)."""
    if policy is None:
        from vla_ros.policies.checkpoint_io import load_policy

        try:
            policy = load_policy(checkpoint, device)
        except Exception as exc:
            raise EvalError(f"checkpoint {checkpoint}: {exc}") from None
    pc = policy.config
    if list(pc.arm_names) != list(cfg.executor.arm_names):
        raise EvalError(f"checkpoint {checkpoint}: arms {pc.arm_names} do not match the robot config's "
                        f"executor.arm_names {cfg.executor.arm_names}")
    bad = [m for m in modalities if m not in MODALITY_SETS]
    if bad:
        raise EvalError(f"modalities: unknown {bad}; choose from {list(MODALITY_SETS)}")
    report = {"bag": str(bag_path), "checkpoint": str(checkpoint), "method": pc.method, "robot": cfg.robot,
              "horizon": pc.horizon, "dt_s": pc.dt_s, "action_dims": list(DIMS),
              "rotation_ref_quat_xyzw": list(pc.rotation_ref_quat_xyzw), "runs": {}}
    series = {}
    for mods in modalities:
        try:
            run, actions = run_policy(bag_path, cfg, policy, mods, actions_source, progress, msg_dirs, stride,
                                      max_frames)
        except BagError as exc:
            raise EvalError(str(exc)) from None
        report["runs"][mods] = metrics(run, actions, pc.rotation_ref_quat_xyzw)
        series[mods] = (run, actions)
    return report, series
