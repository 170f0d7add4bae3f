"""Spatial Forcing: in training, the VLM's visual tokens at layer k are projected (norm + Linear -> GELU ->
Linear) to the teacher's width and aligned to a frozen 3-D teacher's features with a cosine loss. The teacher
is not part of the model: checkpoints hold no teacher weights and inference runs exactly the baseline's
computation (the projector is training-only too, but small, and saved so training can resume).
"""
from __future__ import annotations

import torch
from torch import nn

from vla_ros.core.config import check, from_dict
from vla_ros.core.normalize import NormStats
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import register_policy
from vla_ros.policies.spatial_forcing.configuration_spatial_forcing import SpatialForcingConfig
from vla_ros.policies.spatial_forcing.processing_spatial_forcing import (
    alignment_target,
    cosine_alignment_loss,
    sincos_2d,
    teacher_images,
)
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, load_esm_weights
from vla_ros.policies.spatial_model.forcing import resample_teacher_tokens, vggt_input_images
from vla_ros.policies.vlm_policy import VLMPolicy

__all__ = ["SpatialForcingPolicy", "alignment_target", "cosine_alignment_loss", "sincos_2d"]


@register_policy
class SpatialForcingPolicy(VLMPolicy):
    method = "spatial_forcing"
    TINY_ARGS = {"teacher": {"embed_dim": 64, "heads": 4, "depth": 2, "patch_size": 8, "img_size": 64,
                             "dino_depth": 1, "depth_input": False, "pose_input": False}, "align_layer": 2}

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        super().__init__(config, norm_stats, external_weights)
        self.args = from_dict(SpatialForcingConfig, config.method_args, "method_args")
        n_layers = len(self.vlm_layers()) - 1
        check(self.args.align_layer <= n_layers, "method_args.align_layer", self.args.align_layer,
              f"the VLM has {n_layers} layers")
        W, D = self.vlm.width, 2 * self.args.teacher.embed_dim
        hidden = self.args.projector_hidden or (2 * W if self.args.legacy_target else D)
        self.projector = nn.Sequential(nn.LayerNorm(W), nn.Linear(W, hidden), nn.GELU(), nn.Linear(hidden, D))
        self._teacher: list[EmbodiedSpatialModel] = []  # a list keeps it out of state_dict(), .to() and DDP
        self.teacher_load_report: tuple[list[str], list[str]] | None = None

    def vlm_layers(self) -> list:
        layers = getattr(self.vlm, "layers", None)
        if layers is None:  # HF backbone
            return [None] * (self.vlm.model.config.text_config.num_hidden_layers + 1)
        return [None] * (len(layers) + 1)

    def teacher(self) -> EmbodiedSpatialModel:
        """The frozen teacher, built on first use (training only), on the policy's device."""
        if not self._teacher:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.args.teacher_seed)
                t = EmbodiedSpatialModel(self.args.teacher)
            if self.args.teacher_checkpoint:
                self.teacher_load_report = load_esm_weights(t, self.args.teacher_checkpoint)
            t.requires_grad_(False).eval()
            self._teacher.append(t)
        return self._teacher[0].to(self.device)

    def extra_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        teacher = self.teacher()
        tc = self.args.teacher
        with torch.no_grad():
            if self.args.legacy_target:
                layers, start = teacher.aggregator(teacher_images(batch["rgb"], tc.img_size))
                g = tc.img_size // tc.patch_size
                target = alignment_target(layers[-1][:, :, start:], (self.vlm.grid, self.vlm.grid),
                                          self.args.pe_scale, (g, g))
            else:
                images = vggt_input_images(batch["rgb"], tc.img_size)
                layers, start = teacher.aggregator(images)
                hw = tuple(images.shape[-2:])
                tokens = layers[-1][:, :, start:]
                target = resample_teacher_tokens(tokens, (hw[0] // tc.patch_size, hw[1] // tc.patch_size), hw,
                                                 tokens.shape[1] * self.vlm.grid ** 2, self.args.pe_scale)
        lo, hi = feats["vision_span"]
        student = self.projector(feats["hidden_states"][self.args.align_layer][:, lo:hi])
        align = cosine_alignment_loss(student, target.to(student.dtype))
        return self.args.alpha * align, {"align_loss": float(align.detach())}
