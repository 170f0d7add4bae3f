"""FALCON: spatial tokens from an Embodied Spatial Model, pooled, through a zero-initialised adapter, ADDED to
the VLM's action-token hidden state before the action head. Depth and camera pose are optional ESM inputs
that training withholds at random, so one checkpoint runs RGB-only, RGB-D or RGB-D + pose.
"""
from __future__ import annotations

import torch
from torch import nn

from vla_ros.core.config import from_dict
from vla_ros.core.constants import MOD_DEPTH, MOD_POSE
from vla_ros.core.normalize import NormStats
from vla_ros.policies.baseline.modeling_baseline import BaselinePolicy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.falcon.configuration_falcon import FalconConfig
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, load_esm_state_dict, pose_encoding


def sample_injection(batch_size: int, p_drop: float, available: torch.Tensor | None = None,
                     generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """(B,) bool: True where the optional input is used this step (absent with probability p_drop)."""
    on = torch.rand(batch_size, generator=generator, device=device) >= p_drop
    return on if available is None else on & available


def load_esm_weights(esm: nn.Module, path: str) -> tuple[list[str], list[str]]:
    """VGGT-1B or FALCON ESM weights from a local .safetensors/.pt/.pth file."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model", state)
    return load_esm_state_dict(esm, state)


class FalconPolicy(BaselinePolicy):
    method = "falcon"
    INPUTS = ("rgb", "depth", "pose")
    TINY_ARGS = {"esm": {"embed_dim": 64, "heads": 4, "depth": 2, "patch_size": 8, "img_size": 64, "dino_depth": 1}}

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None):
        super().__init__(config, norm_stats)
        self.args = from_dict(FalconConfig, config.method_args, "method_args")
        self.esm = EmbodiedSpatialModel(self.args.esm)
        if self.args.esm_checkpoint:
            self.esm_load_report = load_esm_weights(self.esm, self.args.esm_checkpoint)
        C2, W = 2 * self.args.esm.embed_dim, self.vlm.width
        self.adapter = nn.Sequential(nn.LayerNorm(C2), nn.Linear(C2, self.args.adapter_hidden), nn.GELU(),
                                     nn.Linear(self.args.adapter_hidden, W))
        nn.init.zeros_(self.adapter[-1].weight)
        nn.init.zeros_(self.adapter[-1].bias)
        self.apply_stage(self.args.stage)

    def apply_stage(self, stage: int) -> None:
        frozen = tuple(self.args.freeze.get(str(stage), []))
        for name, p in self.named_parameters():
            p.requires_grad_(not (frozen and name.startswith(frozen)))

    def spatial_tokens(self, batch: dict, use_depth: torch.Tensor, use_pose: torch.Tensor) -> torch.Tensor:
        rgb = batch["rgb"]
        pose9 = pose_encoding(batch["T_base_camera"], batch["K"], rgb.shape[-2:])
        layers, start = self.esm.aggregator(rgb, batch["depth_m"], batch["depth_valid"], pose9, use_depth, use_pose)
        return layers[-1][:, :, start:]  # (B, S, P, 2C)

    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        out = self.run_vlm(batch)
        B, dev = batch["rgb"].shape[0], batch["rgb"].device
        has_depth = batch["depth_valid"].flatten(1).any(1)
        if training:
            use_depth = sample_injection(B, self.args.p_drop_depth, has_depth, device=dev)
            use_pose = sample_injection(B, self.args.p_drop_pose, batch["pose_valid"].bool(), device=dev)
        else:
            use_depth = has_depth & (MOD_DEPTH in modalities)
            use_pose = batch["pose_valid"].bool() & (MOD_POSE in modalities)
        tokens = self.spatial_tokens(batch, use_depth, use_pose).flatten(1, 2)
        pooled = tokens.amax(1) if self.args.pool == "max" else tokens.mean(1)
        out["action_hidden"] = out["action_hidden"] + self.adapter(pooled)
        out["use_depth"], out["use_pose"] = use_depth, use_pose
        return out
