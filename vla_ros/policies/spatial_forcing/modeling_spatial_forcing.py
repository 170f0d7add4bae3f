"""Spatial Forcing: in training, the VLM's intermediate visual tokens are aligned to a frozen 3-D teacher's
features (+ a 2-D sin-cos positional encoding) with a cosine loss. The teacher is not part of the model:
checkpoints hold no teacher weights and inference runs exactly the baseline's computation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.core.config import check, from_dict
from vla_ros.core.normalize import NormStats
from vla_ros.policies.baseline.modeling_baseline import BaselinePolicy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.falcon.modeling_falcon import load_esm_weights
from vla_ros.policies.spatial_forcing.configuration_spatial_forcing import SpatialForcingConfig
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel


def sincos_2d(dim: int, gh: int, gw: int) -> torch.Tensor:
    """(gh*gw, dim) 2-D sin-cos positional encoding (half the channels for y, half for x)."""
    assert dim % 4 == 0, "sin-cos PE needs a channel count divisible by 4"
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32),
                            indexing="ij")
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        ang = coord[:, None] * omega[None]
        parts += [ang.sin(), ang.cos()]
    return torch.cat(parts, 1)


def alignment_target(teacher_tokens: torch.Tensor, grid_hw: tuple[int, int], pe_scale: float) -> torch.Tensor:
    """Teacher patch tokens (B, S, P, D) + scaled PE, bilinearly resized to the VLA grid -> (B, S*gh*gw, D)."""
    B, S, P, D = teacher_tokens.shape
    g = int(math.isqrt(P))
    x = teacher_tokens + pe_scale * sincos_2d(D, g, g).to(teacher_tokens)
    x = x.reshape(B * S, g, g, D).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=grid_hw, mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(B, S * grid_hw[0] * grid_hw[1], D)


def cosine_alignment_loss(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(student, target, dim=-1).mean()


class SpatialForcingPolicy(BaselinePolicy):
    method = "spatial_forcing"
    TINY_ARGS = {"teacher": {"embed_dim": 64, "heads": 4, "depth": 2, "patch_size": 8, "img_size": 64,
                             "dino_depth": 1, "depth_input": False, "pose_input": False}, "align_layer": 2}

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None):
        super().__init__(config, norm_stats)
        self.args = from_dict(SpatialForcingConfig, config.method_args, "method_args")
        check(self.args.align_layer <= config.vlm.depth, "method_args.align_layer", self.args.align_layer,
              f"the VLM has {config.vlm.depth} layers")
        W, D = self.vlm.width, 2 * self.args.teacher.embed_dim
        self.projector = nn.Sequential(nn.LayerNorm(W), nn.Linear(W, 2 * W), nn.GELU(), nn.Linear(2 * W, D))
        self._teacher: list[EmbodiedSpatialModel] = []  # a list keeps it out of state_dict() and .to()

    def teacher(self) -> EmbodiedSpatialModel:
        if not self._teacher:
            gen_state = torch.random.get_rng_state()
            torch.manual_seed(self.args.teacher_seed)
            t = EmbodiedSpatialModel(self.args.teacher)
            torch.random.set_rng_state(gen_state)
            if self.args.teacher_checkpoint:
                load_esm_weights(t, self.args.teacher_checkpoint)
            t.requires_grad_(False).eval()
            self._teacher.append(t)
        t = self._teacher[0]
        return t.to(self.device)

    def extra_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            layers, start = self.teacher().aggregator(batch["rgb"])
            target = alignment_target(layers[-1][:, :, start:], (self.vlm.grid, self.vlm.grid), self.args.pe_scale)
        lo, hi = feats["vision_span"]
        student = self.projector(feats["hidden_states"][self.args.align_layer][:, lo:hi])
        align = cosine_alignment_loss(student, target)
        return self.args.alpha * align, {"align_loss": float(align.detach())}
