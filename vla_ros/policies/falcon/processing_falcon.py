"""FALCON input processing: which optional ESM inputs each sample gets, and the ESM's pose input.

Training withholds depth and pose independently per sample with probability p (0.33 in FALCON) so one
model serves RGB-only, RGB-D and RGB-D + pose; at inference whatever the observation has is used.
"""
from __future__ import annotations

import numpy as np
import torch

from vla_ros.core.constants import MOD_DEPTH, MOD_POSE
from vla_ros.policies.spatial_model.esm import pose_encoding, pose_encoding_vggt


def sample_injection(batch_size: int, p_drop: float, available: torch.Tensor | None = None,
                     generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """(B,) bool: True where the optional input is used this step (absent with probability p_drop)."""
    on = torch.rand(batch_size, generator=generator, device=device) >= p_drop
    return on if available is None else on & available.to(on.device)


def injection(batch: dict, modalities: tuple[str, ...], training: bool, p_drop_depth: float, p_drop_pose: float,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(use_depth, use_pose), each (B,) bool: present in the sample, among the modalities asked for (in training,
    the policy's configured ones: an RGB-only FALCON never sees depth or pose) and, in training, kept by the
    draw."""
    B, dev = batch["rgb"].shape[0], batch["rgb"].device
    has_depth = batch["depth_valid"].flatten(1).any(1) & (MOD_DEPTH in modalities)
    has_pose = batch["pose_valid"].bool().reshape(B) & (MOD_POSE in modalities)
    if training:
        return (sample_injection(B, p_drop_depth, has_depth, generator, dev),
                sample_injection(B, p_drop_pose, has_pose, generator, dev))
    return has_depth, has_pose


def esm_inputs(batch: dict, use_depth: torch.Tensor, use_pose: torch.Tensor, pose_frame: str = "first_camera"
               ) -> dict:
    """Keyword arguments of the ESM aggregator for a contract batch (pose relative to `pose_frame`)."""
    rgb = batch["rgb"]
    T = batch["T_base_camera"].float()
    ok = batch["pose_valid"].bool().reshape(-1, 1) & torch.isfinite(T).flatten(2).all(2)  # (B, S)
    T = torch.where(ok[..., None, None], torch.nan_to_num(T), torch.eye(4, device=T.device))  # unknown: unused
    return {"depth": batch["depth_m"], "depth_valid": batch["depth_valid"],
            "pose9": pose_encoding(T, batch["K"].float(), tuple(rgb.shape[-2:]), pose_frame),
            "depth_on": use_depth, "pose_on": use_pose & ok.all(1)}


def used_modalities(use_depth: torch.Tensor, use_pose: torch.Tensor) -> tuple[str, ...]:
    """Modalities used by every sample of the batch (what a chunk reports)."""
    return ("rgb",) + ((MOD_DEPTH,) if bool(use_depth.all()) else ()) + ((MOD_POSE,) if bool(use_pose.all()) else ())


# --- the reference architecture (FALCON's ReplaceAggregator_Depth frame selection) -----------------------------
def frames_for_fraction(S: int, fraction: float, kind: str, rng: np.random.Generator) -> list[int]:
    """The ESM's `inference` selection: round(S * fraction) frames; "pose": frames 0..n-1; "depth": frame 0 plus
    n-1 others drawn without replacement from 1..S-1."""
    n = max(0, min(int(round(S * fraction)), S))
    if n <= 1:
        return list(range(n))
    if kind == "pose":
        return list(range(n))
    return sorted([0] + [int(i) for i in rng.choice(np.arange(1, S), size=n - 1, replace=False)])


def frames_random(S: int, kind: str, rng: np.random.Generator, p_none: float = 0.33) -> list[int]:
    """The ESM's training draw (one per batch): with probability p_none none; else k ~ U{0..S} (k = 0: none);
    "pose": frames 0..k-1; "depth": frame 0 plus k-1 others drawn from 1..S-1."""
    if rng.random() < p_none:
        return []
    k = int(rng.integers(0, S + 1))
    if k == 0:
        return []
    if kind == "pose":
        return list(range(k))
    others = [int(i) for i in rng.choice(np.arange(1, S), size=k - 1, replace=False)] if S > 1 else []
    return sorted([0] + others)


def reference_esm_inputs(batch: dict, modalities: tuple[str, ...], esm_gt: str, camera_gt_pt: float,
                         depth_gt_pt: float, rng: np.random.Generator) -> dict:
    """Aggregator keyword arguments for the reference convention (ESMConfig.input_convention "vggt"): the same
    frames for every element of the batch; the pose encoded over the selected frames only (VGGT's
    normalize_extrinsics sees only them). Depth/pose are considered only when among `modalities`."""
    rgb = batch["rgb"]
    B, S = rgb.shape[:2]
    if esm_gt == "fraction":
        pose_idx = frames_for_fraction(S, camera_gt_pt, "pose", rng)
        depth_idx = frames_for_fraction(S, depth_gt_pt, "depth", rng)
    else:
        pose_idx, depth_idx = frames_random(S, "pose", rng), frames_random(S, "depth", rng)
    dev = rgb.device
    out: dict = {}
    if MOD_DEPTH in modalities and depth_idx:
        on = torch.zeros(B, S, dtype=torch.bool, device=dev)
        on[:, depth_idx] = True
        out.update(depth=batch["depth_m"], depth_valid=batch["depth_valid"], depth_on=on)
    if MOD_POSE in modalities and pose_idx:
        k = len(pose_idx)  # a prefix 0..k-1
        pose9 = torch.zeros(B, S, 9, device=dev)
        pose9[:, :k] = pose_encoding_vggt(batch["T_base_camera"][:, :k].float(), batch["K"][:, :k].float(),
                                          tuple(rgb.shape[-2:]))
        on = torch.zeros(B, S, dtype=torch.bool, device=dev)
        on[:, :k] = batch["pose_valid"].bool().reshape(B, -1).expand(B, S)[:, :k].to(dev)  # (B,) or (B, S)
        out.update(pose9=pose9, pose_on=on)
    return out


CAMERA_KEYS = ("rgb", "depth_m", "depth_valid", "K", "T_base_camera")  # (B, cameras, ...) in a contract batch
# per sample, or per frame of a window
FRAME_KEYS = ("pose_valid", "proprio", "action", "action_pad", "subgoal_m", "ee_position_m")


def reference_frames(batch: dict, camera: int = 0) -> dict:
    """A contract batch -> the reference's frames of one camera, (B, L, ...). A plain batch (rgb (B, C, 3, H, W),
    cameras on axis 1) gives L = 1; a window (rgb (B, L, C, 3, H, W), EpisodeDataset(window=L)) gives its L
    consecutive frames. Every per-camera key (image, depth, mask, K, pose) is cut to the same camera, so they
    stay consistent; per-sample keys get the frame axis. The reference reads the static camera only (CALVIN's
    static view, SimplerEnv's third-person view; use_hand_rgb and esm_use_hand_rgb false in the release)."""
    windowed = batch["rgb"].dim() == 6
    out = dict(batch)
    for k in CAMERA_KEYS:
        if k in batch:
            out[k] = batch[k][:, :, camera] if windowed else batch[k][:, camera:camera + 1]
    if not windowed:
        for k in FRAME_KEYS:
            if k in batch:
                out[k] = batch[k][:, None]
    return out


def pad_square(img: np.ndarray, fill: float = 0) -> tuple[np.ndarray, int, int]:
    """Centre-pad (H, W[, C]) to a square (the ESM's load_and_preprocess_images_square_new) -> (img, left, top)."""
    h, w = img.shape[:2]
    m = max(h, w)
    left, top = (m - w) // 2, (m - h) // 2
    out = np.full((m, m) + img.shape[2:], fill, dtype=img.dtype)
    out[top:top + h, left:left + w] = img
    return out, left, top
