"""Layered safety for end-effector targets. Pure functions over arrays; every clamp or refusal is counted.

Layers: (1) whole-chunk validation before any step runs (NaN/Inf, unit quaternions, gripper range, jumps
between steps and from the current target, arm names and frame); (2) per-tick clamps of the target:
workspace box in the base frame, translation/rotation/gripper step limits and speed limits; (3) a hold when
the newest chunk is older than a timeout, counted from its stamp and from its receipt (in the executor).

Invariant of `clamp_target`: every command it returns is inside the workspace box, finite, with unit
quaternions, and within the step and speed limits of the previous command. When the previous pose (the
measured one, before the first command of an episode) lies outside the box by more than one step, no command
can satisfy both the box and the step limit: it returns None and the executor holds, reporting the distance.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.chunking import Target
from vla_ros.core.config import bounded, check, check_bounds
from vla_ros.core.constants import UNIT_QUAT_TOL_STRICT
from vla_ros.core.transforms import quat_angle_rad, slerp
from vla_ros.core.types import ActionChunk


@dataclass
class SafetyConfig:
    """Args:
    workspace_min_m / workspace_max_m: box in the base frame the end effector must stay inside.
    max_step_m / max_step_rad / max_gripper_step: largest change between two consecutive commands.
    max_speed_m_s / max_speed_rad_s: speed limits (combined with the command period).
    max_chunk_jump_m / max_chunk_jump_rad: largest jump between consecutive chunk steps, and from the
        current target to the first step, beyond which the whole chunk is refused.
    chunk_timeout_s: hold when the newest chunk's observation stamp is older than this, or when it was received
        longer ago than this (whichever expires first: a wrong clock cannot extend a chunk's life).
    max_chunk_age_s: refuse a chunk that arrives later than this after its observation stamp.
    max_future_s: refuse a chunk stamped more than this ahead of the executor's clock (clock skew between the
        machines, or a wrong publisher); such a chunk would otherwise outlive its timeout and lock out the
        chunks that follow it.
    """

    workspace_min_m: list[float] = field(default_factory=lambda: [0.2, -0.5, 0.0])
    workspace_max_m: list[float] = field(default_factory=lambda: [0.8, 0.5, 0.7])
    max_step_m: float = bounded(0.02, 1e-6, 100.0)
    max_step_rad: float = bounded(0.1, 1e-6, 100.0)
    max_gripper_step: float = bounded(1.0, 0.0, 1.0, unit="fraction of the opening")
    max_speed_m_s: float = bounded(0.3, 1e-6, 100.0)
    max_speed_rad_s: float = bounded(1.0, 1e-6, 100.0)
    max_chunk_jump_m: float = bounded(0.15, 1e-6, 100.0)
    max_chunk_jump_rad: float = bounded(0.8, 1e-6, 100.0)
    chunk_timeout_s: float = bounded(1.0, 1e-6, 100.0)
    max_chunk_age_s: float = bounded(2.0, 1e-6, 100.0)
    max_future_s: float = bounded(0.1, 1e-6, 100.0)

    def __post_init__(self):
        check(len(self.workspace_min_m) == 3 and len(self.workspace_max_m) == 3, "workspace_min_m",
              self.workspace_min_m, "workspace bounds need 3 numbers each")
        check(all(a < b for a, b in zip(self.workspace_min_m, self.workspace_max_m)), "workspace_max_m",
              self.workspace_max_m, f"must be greater than workspace_min_m {self.workspace_min_m} on every axis")
        check_bounds(self)


def validate_chunk(chunk: ActionChunk, arm_names: list[str], frame_id: str, current: Target | None,
                   cfg: SafetyConfig) -> list[str]:
    """Reasons to refuse the whole chunk (empty list = accept). Checks absolute chunks' jumps only."""
    reasons = []
    if chunk.horizon == 0:
        return ["empty chunk"]
    if list(chunk.arm_names) != list(arm_names):
        reasons.append(f"arm names {list(chunk.arm_names)} != configured {list(arm_names)}")
    if frame_id and chunk.frame_id and chunk.frame_id != frame_id:
        reasons.append(f"frame {chunk.frame_id!r} != base frame {frame_id!r}")
    if not np.isfinite(chunk.dt_s) or chunk.dt_s <= 0:
        reasons.append(f"dt_s {chunk.dt_s} is not positive")
    arrays = {"position": chunk.position_m, "orientation": chunk.quat_xyzw, "gripper": chunk.gripper}
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            reasons.append(f"non-finite {name} (NaN/Inf)")
    if reasons:
        return reasons
    norms = np.linalg.norm(chunk.quat_xyzw, axis=-1)
    if np.any(np.abs(norms - 1.0) > UNIT_QUAT_TOL_STRICT):
        reasons.append(f"orientation not a unit quaternion (norm {norms.min():.3f}..{norms.max():.3f})")
    if np.any((chunk.gripper < 0) | (chunk.gripper > 1)):
        reasons.append(f"gripper outside [0, 1] ({chunk.gripper.min():.3f}..{chunk.gripper.max():.3f})")
    if chunk.reference != "absolute" or reasons:
        return reasons
    pos, quat = chunk.position_m, chunk.quat_xyzw
    if current is not None:
        pos = np.concatenate([current.position_m[None], pos])
        quat = np.concatenate([current.quat_xyzw[None], quat])
    jumps = np.linalg.norm(np.diff(pos, axis=0), axis=-1)
    if jumps.size and jumps.max() > cfg.max_chunk_jump_m:
        reasons.append(f"position jump {jumps.max():.3f} m > max {cfg.max_chunk_jump_m} m")
    rot = quat_angle_rad(quat[1:], quat[:-1])
    if rot.size and rot.max() > cfg.max_chunk_jump_rad:
        reasons.append(f"rotation jump {rot.max():.3f} rad > max {cfg.max_chunk_jump_rad} rad")
    return reasons


def clamp_target(previous: Target | None, target: Target, period_s: float, cfg: SafetyConfig,
                 counters: Counter) -> Target | None:
    """Clamp one command: workspace box, then step and speed limits relative to the previous command, then the
    box again (a step from a previous pose outside the box may end outside it). None when the previous pose is
    so far outside the box that no command is both inside it and within one step (the caller holds)."""
    out = target.copy()
    lo, hi = np.asarray(cfg.workspace_min_m), np.asarray(cfg.workspace_max_m)
    boxed = np.clip(out.position_m, lo, hi)
    if not np.array_equal(boxed, out.position_m):
        counters["clamp_workspace"] += 1
    out.position_m = boxed
    if previous is None:
        return out
    max_t = min(cfg.max_step_m, cfg.max_speed_m_s * period_s)
    delta = out.position_m - previous.position_m
    dist = np.linalg.norm(delta, axis=-1, keepdims=True)
    if np.any(dist > max_t + 1e-12):
        counters["clamp_translation_step"] += 1
        scale = np.minimum(1.0, max_t / np.maximum(dist, 1e-12))
        out.position_m = previous.position_m + delta * scale
    inside = np.clip(out.position_m, lo, hi)
    if not np.array_equal(inside, out.position_m):  # only when previous is outside the box
        near = np.clip(previous.position_m, lo, hi)  # the box point nearest the previous pose
        if np.any(np.linalg.norm(near - previous.position_m, axis=-1) > max_t + 1e-9):
            counters["hold_outside_workspace"] += 1
            return None
        inside = _toward_within_step(previous.position_m, near, inside, max_t)
        out.position_m = inside
    max_r = min(cfg.max_step_rad, cfg.max_speed_rad_s * period_s)
    ang = quat_angle_rad(previous.quat_xyzw, out.quat_xyzw)
    if np.any(ang > max_r + 1e-9):
        counters["clamp_rotation_step"] += 1
        out.quat_xyzw = np.stack([slerp(previous.quat_xyzw[i], out.quat_xyzw[i], min(1.0, max_r / a) if a > 0 else 1.0)
                                  for i, a in enumerate(ang)])
    dg = out.gripper - previous.gripper
    if np.any(np.abs(dg) > cfg.max_gripper_step + 1e-12):
        counters["clamp_gripper_step"] += 1
        out.gripper = previous.gripper + np.clip(dg, -cfg.max_gripper_step, cfg.max_gripper_step)
    return out


def _toward_within_step(previous: np.ndarray, near: np.ndarray, goal: np.ndarray, max_t: float) -> np.ndarray:
    """Per arm, the point on the segment near -> goal (both in the box, so the segment is too) farthest along it
    while within max_t of `previous` (near is): the largest root of |near + s (goal - near) - previous| = max_t."""
    d, e = goal - near, near - previous
    a = np.sum(d * d, axis=-1, keepdims=True)
    b = 2.0 * np.sum(d * e, axis=-1, keepdims=True)
    c = np.sum(e * e, axis=-1, keepdims=True) - max_t ** 2  # <= 0: near is within the step
    root = (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / np.maximum(2 * a, 1e-300)
    s = np.where(a > 0, np.clip(root * (1 - 1e-9), 0.0, 1.0), 0.0)
    return near + s * d


def distance_outside_box_m(position_m: np.ndarray, cfg: SafetyConfig) -> float:
    """Largest distance of any arm's position from the workspace box (0 inside)."""
    p = np.asarray(position_m, dtype=float)
    return float(np.linalg.norm(p - np.clip(p, cfg.workspace_min_m, cfg.workspace_max_m), axis=-1).max())
