"""Input and output transforms shared by every method; they mirror each other.

In: an `Observation` -> a batch of one in the training contract (images resized to the model size with K
rescaled to match, depth resized nearest, proprio normalized by the model). Out: normalized arm values and
gripper probabilities -> raw 7-d actions [xyz m, rotation vector rad, gripper 0..1] -> an `ActionChunk`.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vla_ros.core.actions import actions_to_poses
from vla_ros.core.camera import Intrinsics
from vla_ros.core.constants import MOD_DEPTH, MOD_POSE, MOD_RGB, MODALITY_SETS
from vla_ros.core.joints import JointStateError, select_joints
from vla_ros.core.normalize import NormStats
from vla_ros.core.types import ActionChunk, Observation


class PolicyInputError(ValueError):
    """The observation does not fit the policy (cameras, proprio size, ...); the message names the field."""


def choose_modalities(allowed: str, requested: tuple[str, ...] | None, has_depth: bool, has_pose: bool
                      ) -> tuple[str, ...]:
    """Inputs to use: allowed by the config, asked for (if any) and actually present."""
    use = [MOD_RGB]
    ok = set(MODALITY_SETS[allowed]) & (set(requested) if requested else set(MODALITY_SETS[allowed]))
    if MOD_DEPTH in ok and has_depth:
        use.append(MOD_DEPTH)
    if MOD_POSE in ok and has_pose:
        use.append(MOD_POSE)
    return tuple(use)


def observation_to_batch(obs: Observation, camera_names: list[str], image_size: int, proprio_dim: int,
                         device: torch.device | str = "cpu", proprio_names: list[str] | None = None) -> dict:
    """One observation -> a batch of one (training contract); K is rescaled with the resize. `proprio_names`:
    the joints the model reads, picked by name from the observation's proprio ([] / None = all of it)."""
    by_name = {c.name: c for c in obs.cameras}
    missing = [n for n in camera_names if n not in by_name]
    if missing:
        raise PolicyInputError(f"cameras: policy needs {camera_names}, observation lacks {missing}")
    proprio = np.asarray(obs.proprio, np.float32).reshape(-1)
    if proprio_names:
        try:
            proprio = select_joints(proprio, list(obs.proprio_names), list(proprio_names))
        except JointStateError as exc:
            raise PolicyInputError(f"proprio: {exc}") from None
    if proprio.shape[0] != proprio_dim:
        raise PolicyInputError(f"proprio: policy expects {proprio_dim} values, got {proprio.shape[0]}")
    s = image_size
    rgb, depth, valid, K, T, pose_ok = [], [], [], [], [], True
    for name in camera_names:
        cam = by_name[name]
        if cam.rgb.ndim != 3 or cam.rgb.shape[2] != 3:
            raise PolicyInputError(f"cameras[{name}].rgb: expected (H, W, 3), got {cam.rgb.shape}")
        h, w = cam.rgb.shape[:2]
        rgb.append(cv2.resize(np.ascontiguousarray(cam.rgb), (s, s), interpolation=cv2.INTER_AREA))
        K.append(Intrinsics(np.asarray(cam.K, float), np.zeros(0), w, h).resized(s, s).K)
        if cam.depth_m is not None:
            if cam.depth_m.shape != (h, w):
                raise PolicyInputError(f"cameras[{name}].depth_m: shape {cam.depth_m.shape} != rgb {(h, w)}")
            v = cam.depth_valid if cam.depth_valid is not None else cam.depth_m > 0
            d = cv2.resize(np.ascontiguousarray(cam.depth_m, np.float32), (s, s), interpolation=cv2.INTER_NEAREST)
            v = cv2.resize(v.astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST) > 0
            d = np.where(v, d, 0.0).astype(np.float32)
        else:
            d, v = np.zeros((s, s), np.float32), np.zeros((s, s), bool)
        depth.append(d)
        valid.append(v)
        pose_ok = pose_ok and cam.T_base_camera is not None
        T.append(cam.T_base_camera if cam.T_base_camera is not None else np.eye(4))
    return {
        "rgb": torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float().div(255.0)[None].to(device),
        "depth_m": torch.from_numpy(np.stack(depth))[None].to(device),
        "depth_valid": torch.from_numpy(np.stack(valid))[None].to(device),
        "K": torch.from_numpy(np.stack(K)).float()[None].to(device),
        "T_base_camera": torch.from_numpy(np.stack(T)).float()[None].to(device),
        "pose_valid": torch.tensor([pose_ok], device=device),
        "proprio": torch.from_numpy(proprio)[None].to(device),
        "instruction": [obs.instruction],
    }


@dataclass(frozen=True)
class ActionProcessor:
    """Raw actions (B, T, A, 7) <-> normalized arm values (B, T, A, 6) + gripper (B, T, A).

    Args:
        norm_stats: the checkpoint's stats ("action" over A*7 dims; None = identity).
        mode: normalization mode override (None = the stats' own; SpatialVLA's grid needs "q01_q99").
    """

    norm_stats: NormStats | None
    mode: str | None = None

    def normalize(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, A, _ = action.shape
        flat = action.reshape(B, T, A * 7)
        if self.norm_stats is not None:
            flat = self.norm_stats.normalize("action", flat, self.mode)
        n = flat.reshape(B, T, A, 7)
        return n[..., :6], action[..., 6].clamp(0, 1)

    def unnormalize(self, arm: torch.Tensor, gripper: torch.Tensor) -> torch.Tensor:
        B, T, A, _ = arm.shape
        flat = torch.cat([arm, gripper[..., None]], -1).reshape(B, T, A * 7)
        if self.norm_stats is not None:
            flat = self.norm_stats.unnormalize("action", flat, self.mode)
        out = flat.reshape(B, T, A, 7)
        return torch.cat([out[..., :6], out[..., 6:].clamp(0, 1)], -1)

    def normalize_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        if self.norm_stats is None or "proprio" not in self.norm_stats.stats:
            return proprio
        return self.norm_stats.normalize("proprio", proprio)


def actions_to_chunk(actions: np.ndarray, obs: Observation, cfg, used: tuple[str, ...], method: str,
                     latency_s: float) -> ActionChunk:
    """(T, A, 7) raw actions -> ActionChunk (positions, quaternions via the config's rotation reference)."""
    pos, quat, grip = actions_to_poses(actions, cfg.rotation_ref_quat_xyzw)
    return ActionChunk(stamp_s=obs.stamp_s, dt_s=cfg.dt_s, frame_id="", arm_names=list(cfg.arm_names),
                       position_m=pos, quat_xyzw=quat, gripper=grip, reference=cfg.action_reference,
                       modalities=used, method=method, policy_name=cfg.name, inference_latency_s=latency_s)
