"""FALCON: spatial tokens from an Embodied Spatial Model (last-layer patch tokens, pooled over tokens) go
through a zero-initialised adapter and are ADDED to the VLM's action-token hidden state before the action head.

`method_args.architecture` picks the model: "reference" (the default: the released FALCON, Kosmos-2 + the
reference heads, see modeling_falcon_reference.py) or "compact" (this file's small model of the bundled sim
checkpoints: tiny VLM, LayerNorm/GELU adapter, vla_ros heads; depth and pose withheld per sample in training).
"""
from __future__ import annotations

import torch
from torch import nn

from vla_ros.core.config import from_dict
from vla_ros.core.normalize import NormStats
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import register_policy
from vla_ros.policies.falcon.configuration_falcon import FalconConfig
from vla_ros.policies.falcon.processing_falcon import esm_inputs, injection, sample_injection
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, load_esm_weights
from vla_ros.policies.vlm_policy import VLMPolicy

__all__ = ["FalconPolicy", "sample_injection"]


@register_policy
class FalconPolicy(VLMPolicy):
    method = "falcon"
    INPUTS = ("rgb", "depth", "pose")
    TINY_ARGS = {"architecture": "compact",
                 "esm": {"embed_dim": 64, "heads": 4, "depth": 2, "patch_size": 8, "img_size": 64, "dino_depth": 1,
                         "input_convention": "legacy", "pos_embed_antialias": False}}

    def __new__(cls, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        """architecture "reference" builds a FalconReferencePolicy instead (same method name)."""
        if cls is FalconPolicy and config.method_args.get("architecture", "reference") == "reference":
            from vla_ros.policies.falcon.modeling_falcon_reference import FalconReferencePolicy

            return FalconReferencePolicy(config, norm_stats, external_weights)
        return super().__new__(cls)

    @classmethod
    def sample_window(cls, config: PolicyConfig) -> int:
        """The reference architecture trains on windows of `reference.window` frames (when > 1)."""
        args = from_dict(FalconConfig, config.method_args, "method_args")
        return args.reference.window if args.architecture == "reference" and args.reference.window > 1 else 0

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        super().__init__(config, norm_stats, external_weights)
        self.args = from_dict(FalconConfig, config.method_args, "method_args")
        self.esm = EmbodiedSpatialModel(self.args.esm)
        self.esm_load_report: tuple[list[str], list[str]] | None = None
        if self.args.esm_checkpoint and external_weights:
            self.esm_load_report = load_esm_weights(self.esm, self.args.esm_checkpoint)
        C2, W = 2 * self.args.esm.embed_dim, self.vlm.width
        self.adapter = nn.Sequential(nn.LayerNorm(C2), nn.Linear(C2, self.args.adapter_hidden), nn.GELU(),
                                     nn.Linear(self.args.adapter_hidden, W))
        nn.init.zeros_(self.adapter[-1].weight)
        nn.init.zeros_(self.adapter[-1].bias)
        pool = self.args.pool
        self.pool = pool if pool != "auto" else ("mean" if config.head.kind == "lstm" else "max")
        self.apply_stage(self.args.stage)

    def apply_stage(self, stage: int) -> None:
        """Freeze the parameters whose names start with a prefix in `freeze[str(stage)]`; unfreeze the rest."""
        frozen = tuple(self.args.freeze.get(str(stage), []))
        for name, p in self.named_parameters():
            p.requires_grad_(not (frozen and name.startswith(frozen)))

    def spatial_tokens(self, batch: dict, use_depth: torch.Tensor, use_pose: torch.Tensor) -> torch.Tensor:
        """Last-layer patch tokens (B, S * P, 2C)."""
        inputs = esm_inputs(batch, use_depth, use_pose, self.args.esm.pose_frame)
        layers, start = self.esm.aggregator(batch["rgb"], **inputs)
        return layers[-1][:, :, start:].flatten(1, 2)

    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        out = self.run_vlm(batch)
        use_depth, use_pose = injection(batch, modalities, training, self.args.p_drop_depth, self.args.p_drop_pose)
        tokens = self.spatial_tokens(batch, use_depth, use_pose)
        pooled = tokens.amax(1) if self.pool == "max" else tokens.mean(1)
        out["action_hidden"] = out["action_hidden"] + self.adapter(pooled)
        out["use_depth"], out["use_pose"] = use_depth, use_pose
        return out
