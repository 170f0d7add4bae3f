"""Training samples from the on-disk dataset: one frame's observation and the next `horizon` targets, in the
policy's action reference (absolute targets, or deltas from the measured end-effector pose at the frame)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from vla_ros.core.actions import poses_to_actions
from vla_ros.core.camera import Intrinsics
from vla_ros.core.constants import REF_ABSOLUTE, REF_DELTA_MEASURED, TOOL_DOWN_QUAT_XYZW
from vla_ros.core.joints import JointStateError, select_joints
from vla_ros.core.normalize import action_proprio_stats
from vla_ros.data.dataset import DatasetError, load_episode, read_meta


def chunk_targets(ep: dict, horizon: int, reference: str, ref_quat) -> tuple[np.ndarray, np.ndarray]:
    """Per frame t the targets of frames t+1 .. t+horizon as 7-number actions (N, horizon, A, 7), padded with
    the last target past the episode end, and the pad flags (N, horizon). delta_measured: position minus the
    measured position at t, rotation R_target @ R_measured(t)^-1."""
    n = len(ep["stamp_s"])
    idx = np.arange(n)[:, None] + np.arange(1, horizon + 1)[None]
    pad = idx >= n
    idx = np.minimum(idx, n - 1)
    pos, quat, grip = ep["action_position_m"][idx], ep["action_quat_xyzw"][idx], ep["action_gripper"][idx]
    if reference == REF_DELTA_MEASURED:
        ee = ep["ee_pose"][:, None]  # (N, 1, A, 7)
        pos = pos - ee[..., :3]
        rel = Rotation.from_quat(quat.reshape(-1, 4)) * Rotation.from_quat(
            np.broadcast_to(ee[..., 3:], quat.shape).reshape(-1, 4)).inv()
        quat = rel.as_quat().reshape(quat.shape)
    return poses_to_actions(pos, quat, grip, ref_quat).astype(np.float32), pad


def gripper_event_targets(ep: dict) -> np.ndarray | None:
    """Per frame t and arm, where the next gripper event (the commanded gripper crossing 0.5: a grasp or a release)
    is commanded, relative to the measured position at t, (N, A, 3); past the last event, the last commanded
    position. None without a measured `ee_pose`. The targets of HeadConfig.subgoal_weight."""
    if "ee_pose" not in ep:
        return None
    pos, grip = ep["action_position_m"], ep["action_gripper"] > 0.5  # (N, A, 3), (N, A)
    n, arms = grip.shape
    goal = np.empty_like(pos)
    for a in range(arms):
        nxt = n - 1
        for t in range(n - 1, -1, -1):  # the first frame after t whose command differs from the one before it
            goal[t, a] = pos[nxt, a]
            if t > 0 and grip[t, a] != grip[t - 1, a]:
                nxt = t
    return (goal - ep["ee_pose"][..., :3]).astype(np.float32)


def _shrink(ep: dict, cameras: list[str], size: int) -> dict:
    """Resize an episode's images and depth to the model's square input once, at load (K rescaled to match), so
    memory and per-sample work scale with the model's input, not the camera's."""
    out = {k: v for k, v in ep.items() if not k.startswith(("rgb__", "depth_m__", "K__"))}
    for cam in cameras:
        rgb = ep[f"rgb__{cam}"]
        h, w = rgb.shape[1:3]
        out[f"rgb__{cam}"] = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in rgb])
        out[f"K__{cam}"] = np.stack([Intrinsics(k.astype(float), np.zeros(0), w, h).resized(size, size).K
                                     for k in ep[f"K__{cam}"]])
        if f"depth_m__{cam}" in ep:
            out[f"depth_m__{cam}"] = np.stack([cv2.resize(d, (size, size), interpolation=cv2.INTER_NEAREST)
                                               for d in ep[f"depth_m__{cam}"]])
    return out


class EpisodeDataset(torch.utils.data.Dataset):
    """Episodes are split into train/val by episode (seeded); items follow the training batch contract.

    Args: root (dataset folder, or a list of folders with the same cameras and joints), horizon, image_size
    (square model input), split ("train" | "val"), val_fraction, seed, cameras (default: all), ref_quat (rotation
    reference of the actions), reference (absolute | delta_measured; the latter needs the episodes' measured
    `ee_pose`), proprio_names (the joints to read, by the dataset's joint_names; [] = all), shift_px (random
    shift augmentation: images and depth padded by this many pixels and cropped back at a random offset, K's
    principal point moved to match; 0 = off), window (0 = one frame per sample; W >= 1: W consecutive frames of
    one episode per sample, every key but the instruction with a leading frame axis (rgb (W, C, 3, H, W), action
    (W, horizon, A, 7), ...), each frame with its own chunk, one shift for the whole window; an episode shorter
    than W repeats its last frame, whose actions are then all flagged in action_pad).
    """

    def __init__(self, root, horizon: int, image_size: int, split: str = "train", val_fraction: float = 0.1,
                 seed: int = 0, cameras: list[str] | None = None, ref_quat=TOOL_DOWN_QUAT_XYZW,
                 reference: str = REF_ABSOLUTE, proprio_names: list[str] | None = None, shift_px: int = 0,
                 window: int = 0):
        if window < 0:
            raise DatasetError(f"window: {window}; expected 0 (one frame) or a number of frames >= 1")
        roots = [root] if isinstance(root, (str, Path)) else list(root)
        metas = [read_meta(r) for r in roots]
        self.meta = metas[0]
        for r, m in zip(roots[1:], metas[1:]):
            for key in ("cameras", "joint_names", "arm_names"):
                if m[key] != self.meta[key]:
                    raise DatasetError(f"{r}: {key} {m[key]} differ from {roots[0]}'s {self.meta[key]}")
        self.cameras = cameras or self.meta["cameras"]
        missing = [c for c in self.cameras if c not in self.meta["cameras"]]
        if missing:
            raise DatasetError(f"{roots[0]}: dataset has cameras {self.meta['cameras']}, policy needs {missing}")
        if reference not in (REF_ABSOLUTE, REF_DELTA_MEASURED):
            raise DatasetError(f"action_reference {reference!r}: training from a dataset supports "
                               f"{REF_ABSOLUTE} and {REF_DELTA_MEASURED}")
        where = [(r, m, i) for r, m in zip(roots, metas) for i in range(len(m["episodes"]))]
        n_ep = len(where)
        order = np.random.default_rng(seed).permutation(n_ep)
        n_val = min(max(1, int(round(val_fraction * n_ep))), n_ep - 1) if n_ep > 1 else 0
        chosen = order[:n_val] if split == "val" else order[n_val:]
        if split == "val" and n_val == 0:
            chosen = order[:1]
        chosen = [where[k] for k in sorted(int(c) for c in chosen)]
        self.episodes = [_shrink(load_episode(r, i), self.cameras, image_size) for r, _, i in chosen]
        if reference == REF_DELTA_MEASURED:
            lacking = [m["episodes"][i]["file"] for (_, m, i), e in zip(chosen, self.episodes) if "ee_pose" not in e]
            if lacking:
                raise DatasetError(f"{roots[0]}: action_reference {reference} needs the measured ee_pose, missing in "
                                   f"{lacking[:3]}")
        if proprio_names:
            try:
                for e in self.episodes:
                    e["proprio"] = select_joints(e["proprio"], self.meta["joint_names"], list(proprio_names))
            except JointStateError as exc:
                raise DatasetError(f"{roots[0]}: proprio_names: {exc}") from None
        self.instructions = [m["episodes"][i]["instruction"] for _, m, i in chosen]
        self.horizon, self.size, self.shift_px = horizon, image_size, int(shift_px)
        self.chunks = [chunk_targets(e, horizon, reference, list(ref_quat)) for e in self.episodes]
        self.subgoals = [gripper_event_targets(e) for e in self.episodes]
        if any(g is None for g in self.subgoals):  # all or none: a batch has one set of keys
            self.subgoals = [None] * len(self.episodes)
        self.window = int(window)
        starts = (lambda n: range(n)) if not self.window else (lambda n: range(max(1, n - self.window + 1)))
        self.index = [(e, t) for e, ep in enumerate(self.episodes) for t in starts(len(ep["stamp_s"]))]
        acts = np.concatenate([a[~p] for a, p in self.chunks])  # (M, A, 7) of real (unpadded) steps
        self.norm_stats = action_proprio_stats(acts.reshape(len(acts), -1),
                                               np.concatenate([e["proprio"] for e in self.episodes]))

    def _offset(self) -> tuple[int, int] | None:
        """One random shift for all cameras (and frames) of a sample (torch's RNG, so training stays seeded)."""
        if not self.shift_px:
            return None
        dx, dy = (int(v) for v in torch.randint(0, 2 * self.shift_px + 1, (2,)))
        return dx, dy

    def _shift(self, rgb, depth, K, offset: tuple[int, int]):
        p, s = self.shift_px, self.size
        dx, dy = offset
        out = ([], [], [])
        for im, d, k in zip(rgb, depth, K):
            out[0].append(np.pad(im, ((p, p), (p, p), (0, 0)), mode="edge")[dy:dy + s, dx:dx + s])
            out[1].append(np.pad(d, p, mode="edge")[dy:dy + s, dx:dx + s])
            k = k.copy()
            k[0, 2] += p - dx
            k[1, 2] += p - dy
            out[2].append(k)
        return out

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        e, t = self.index[i]
        if not self.window:
            return self._frame(e, t, self._offset())
        n, offset = len(self.episodes[e]["stamp_s"]), self._offset()
        frames = [self._frame(e, min(t + j, n - 1), offset) for j in range(self.window)]
        out = {k: torch.stack([f[k] for f in frames]) for k in frames[0] if k != "instruction"}
        beyond = torch.arange(t, t + self.window) >= n
        out["action_pad"] = out["action_pad"] | beyond[:, None]
        out["instruction"] = frames[0]["instruction"]
        return out

    def _frame(self, e: int, t: int, offset: tuple[int, int] | None) -> dict:
        ep, s = self.episodes[e], self.size
        rgb, depth, K, T = [], [], [], []
        for cam in self.cameras:
            rgb.append(ep[f"rgb__{cam}"][t])
            K.append(ep[f"K__{cam}"][t])
            depth.append(ep[f"depth_m__{cam}"][t] if f"depth_m__{cam}" in ep else np.zeros((s, s), np.float32))
            T.append(ep[f"T_base_camera__{cam}"][t])
        if offset is not None:
            rgb, depth, K = self._shift(rgb, depth, K, offset)
        valid = [d > 0 for d in depth]
        T = np.stack(T).astype(np.float32)
        pose_valid = bool(np.isfinite(T).all())
        chunk, pad = self.chunks[e]
        sub = {} if self.subgoals[e] is None else {  # relative to the measured position, which comes along
            "subgoal_m": torch.from_numpy(self.subgoals[e][t]),
            "ee_position_m": torch.from_numpy(ep["ee_pose"][t, :, :3].astype(np.float32))}
        return {**sub, "rgb": torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255.0,
                "depth_m": torch.from_numpy(np.stack(depth)), "depth_valid": torch.from_numpy(np.stack(valid)),
                "K": torch.from_numpy(np.stack(K)).float(),
                "T_base_camera": torch.from_numpy(np.nan_to_num(T, nan=0.0) if not pose_valid else T),
                "pose_valid": torch.tensor(pose_valid),
                "proprio": torch.from_numpy(ep["proprio"][t].astype(np.float32)),
                "instruction": self.instructions[e], "action": torch.from_numpy(chunk[t]),
                "action_pad": torch.from_numpy(pad[t])}
