"""The one policy interface: reset(), infer(observation) -> ActionChunk, compute_loss(batch).

Subclasses implement `encode(batch, modalities) -> dict` (must contain "action_hidden") plus the head
(`predict(features) -> normalized actions` and `head_loss(features, batch)`); pre- and post-processing
(resize + K rescale, normalization, modality choice, chunk assembly) live here once.
"""
from __future__ import annotations

import abc
import time

import cv2
import numpy as np
import torch
from torch import nn

from vla_ros.core.actions import actions_to_poses
from vla_ros.core.camera import Intrinsics
from vla_ros.core.constants import MOD_DEPTH, MOD_POSE, MOD_RGB, MODALITY_SETS
from vla_ros.core.normalize import NormStats
from vla_ros.core.types import ActionChunk, Observation
from vla_ros.policies.config import PolicyConfig


class PolicyInputError(ValueError):
    """The observation does not fit the policy (cameras, proprio size, ...)."""


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


class Policy(nn.Module, abc.ABC):
    method = "base"
    INPUTS: tuple[str, ...] = (MOD_RGB,)  # modalities the model reads at inference

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None):
        super().__init__()
        self.config = config
        self.norm_stats = norm_stats

    # --- interface ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear per-episode state (history windows, ensemblers)."""

    @torch.no_grad()
    def infer(self, obs: Observation, modalities: tuple[str, ...] | None = None) -> ActionChunk:
        t0 = time.perf_counter()
        batch = self.observation_to_batch(obs)
        has_depth = all(c.depth_m is not None for c in obs.cameras)
        has_pose = all(c.T_base_camera is not None for c in obs.cameras)
        used = choose_modalities(self.config.modalities, modalities, has_depth, has_pose)
        used = tuple(m for m in used if m in self.INPUTS)  # what this method can actually consume
        self.eval()
        actions = self.predict_actions(batch, used)[0].cpu().numpy()  # (T, A, 7)
        pos, quat, grip = actions_to_poses(actions, self.config.rotation_ref_quat_xyzw)
        return ActionChunk(stamp_s=obs.stamp_s, dt_s=self.config.dt_s, frame_id="",
                           arm_names=list(self.config.arm_names),
                           position_m=pos, quat_xyzw=quat, gripper=grip, reference=self.config.action_reference,
                           modalities=used, method=self.method, policy_name=self.config.name,
                           inference_latency_s=time.perf_counter() - t0)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        used = choose_modalities(self.config.modalities, None, True, True)
        feats = self.encode(batch, used, training=True)
        loss, metrics = self.head_loss(feats, batch)
        extra, extra_metrics = self.extra_loss(feats, batch)
        total = loss + extra
        metrics.update(extra_metrics)
        metrics["loss"] = float(total.detach())
        return total, metrics

    # --- hooks for subclasses -----------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        """Features for the head; must contain "action_hidden" (B, W)."""

    def extra_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return torch.zeros((), device=feats["action_hidden"].device), {}

    def predict_actions(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        """(B, T, A, 7) unnormalized actions."""
        feats = self.encode(batch, modalities)
        arm, grip_logit = self.head.predict(feats["action_hidden"])
        return self.to_actions(arm, grip_logit)

    def head_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        target_arm, target_grip = self.split_target(batch)
        return self.head.loss(feats["action_hidden"], target_arm, target_grip, batch.get("action_pad"))

    # --- shared processing --------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def split_target(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized arm dims (B, T, A, 6) and gripper targets (B, T, A) from the raw action."""
        a = batch["action"]
        B, T, A, _ = a.shape
        flat = a.reshape(B, T, A * 7)
        if self.norm_stats is not None:
            flat = self.norm_stats.normalize("action", flat)
        n = flat.reshape(B, T, A, 7)
        return n[..., :6], a[..., 6].clamp(0, 1)

    def to_actions(self, arm: torch.Tensor, grip_logit: torch.Tensor) -> torch.Tensor:
        B, T, A, _ = arm.shape
        flat = torch.cat([arm, torch.sigmoid(grip_logit)[..., None]], -1).reshape(B, T, A * 7)
        if self.norm_stats is not None:
            flat = self.norm_stats.unnormalize("action", flat)
        out = flat.reshape(B, T, A, 7)
        out[..., 6] = out[..., 6].clamp(0, 1)
        return out

    def observation_to_batch(self, obs: Observation) -> dict:
        """One observation -> a batch of one (contract: see vla_ros/training/synthetic.py)."""
        cfg = self.config
        by_name = {c.name: c for c in obs.cameras}
        missing = [n for n in cfg.camera_names if n not in by_name]
        if missing:
            raise PolicyInputError(f"cameras: policy needs {cfg.camera_names}, observation lacks {missing}")
        if obs.proprio.shape[-1] != cfg.proprio_dim:
            raise PolicyInputError(f"proprio: policy expects {cfg.proprio_dim} values, got {obs.proprio.shape[-1]}")
        s = cfg.image_size
        rgb, depth, valid, K, T, pose_ok = [], [], [], [], [], True
        for name in cfg.camera_names:
            cam = by_name[name]
            h, w = cam.rgb.shape[:2]
            rgb.append(cv2.resize(np.ascontiguousarray(cam.rgb), (s, s), interpolation=cv2.INTER_AREA))
            K.append(Intrinsics(np.asarray(cam.K, float), np.zeros(0), w, h).resized(s, s).K)
            if cam.depth_m is not None:
                d = cv2.resize(np.ascontiguousarray(cam.depth_m, np.float32), (s, s), interpolation=cv2.INTER_NEAREST)
                v = cv2.resize(cam.depth_valid.astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST) > 0
            else:
                d, v = np.zeros((s, s), np.float32), np.zeros((s, s), bool)
            depth.append(d)
            valid.append(v)
            pose_ok = pose_ok and cam.T_base_camera is not None
            T.append(cam.T_base_camera if cam.T_base_camera is not None else np.eye(4))
        dev = self.device
        return {
            "rgb": torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float().div(255.0)[None].to(dev),
            "depth_m": torch.from_numpy(np.stack(depth))[None].to(dev),
            "depth_valid": torch.from_numpy(np.stack(valid))[None].to(dev),
            "K": torch.from_numpy(np.stack(K)).float()[None].to(dev),
            "T_base_camera": torch.from_numpy(np.stack(T)).float()[None].to(dev),
            "pose_valid": torch.tensor([pose_ok], device=dev),
            "proprio": torch.from_numpy(np.asarray(obs.proprio, np.float32))[None].to(dev),
            "instruction": [obs.instruction],
        }
