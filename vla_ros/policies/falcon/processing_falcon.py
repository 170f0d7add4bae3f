"""FALCON input processing: which optional ESM inputs each sample gets, and the ESM's pose input.

Training withholds depth and pose independently per sample with probability p (0.33 in FALCON) so one
model serves RGB-only, RGB-D and RGB-D + pose; at inference whatever the observation has is used.
"""
from __future__ import annotations

import torch

from vla_ros.core.constants import MOD_DEPTH, MOD_POSE
from vla_ros.policies.spatial_model.esm import pose_encoding


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
