"""Spatial Forcing's alignment target and loss, as the reference (OpenHelix-Team/Spatial-Forcing) computes them;
shared by every policy that aligns to a frozen VGGT-compatible teacher (the ESM of this folder).

Target: the teacher's last-layer patch tokens (B, N views, P, D), plus 0.1 x VGGT's 2-D sin-cos encoding (omega0
100) of an aspect-normalised UV grid, bilinearly resized (align_corners=True) to the student's token grid.
Projector: optional LayerNorm(llm) -> Linear(llm, 2 vggt) -> GELU -> Linear(2 vggt, 2 vggt), Xavier init.
Loss: per sample 1 - mean over unmasked tokens of cos(proj(student), target), averaged over the batch.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn


def create_uv_grid(width: int, height: int, aspect_ratio: float | None = None,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(height, width, 2) UV coordinates (u along the width) spanning +-span*(n-1)/n, where the spans are the
    aspect ratio and 1, both divided by the diagonal sqrt(aspect^2 + 1) (VGGT's `create_uv_grid`)."""
    aspect = float(width) / float(height) if aspect_ratio is None else float(aspect_ratio)
    diag = math.sqrt(aspect ** 2 + 1.0)
    span_x, span_y = aspect / diag, 1.0 / diag
    xs = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width, dtype=dtype)
    ys = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height, height, dtype=dtype)
    vv, uu = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([uu, vv], -1)


def sincos_1d(dim: int, pos: torch.Tensor, omega0: float = 100.0) -> torch.Tensor:
    """(M, dim): [sin(pos * w), cos(pos * w)] with w_k = omega0^(-k / (dim/2)), k < dim/2, in float64."""
    if dim % 2:
        raise ValueError(f"sin-cos encoding needs an even width, got {dim}")
    k = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    ang = pos.reshape(-1).to(torch.float64)[:, None] * (1.0 / omega0 ** k)[None]
    return torch.cat([ang.sin(), ang.cos()], 1)


def uv_position_encoding(grid_h: int, grid_w: int, dim: int, img_hw: tuple[int, int], omega0: float = 100.0
                         ) -> torch.Tensor:
    """(grid_h, grid_w, dim) float32: the first dim/2 channels encode u, the rest v (VGGT
    `position_grid_to_embed` over `create_uv_grid(grid_w, grid_h, aspect_ratio=W/H)`)."""
    if dim % 4:
        raise ValueError(f"UV encoding needs a width divisible by 4, got {dim}")
    uv = create_uv_grid(grid_w, grid_h, aspect_ratio=img_hw[1] / img_hw[0]).reshape(-1, 2)
    emb = torch.cat([sincos_1d(dim // 2, uv[:, 0], omega0), sincos_1d(dim // 2, uv[:, 1], omega0)], 1)
    return emb.float().reshape(grid_h, grid_w, dim)


def resample_teacher_tokens(tokens: torch.Tensor, patch_hw: tuple[int, int], img_hw: tuple[int, int],
                            n_student: int, pe_scale: float = 0.1, omega0: float = 100.0,
                            align_corners: bool = True) -> torch.Tensor:
    """Teacher patch tokens (B, N, P, D) -> (B, n_student, D) on the student's grid (the reference's
    `interpolate_pooling`): + pe_scale * UV encoding (0 = none), then bilinear resize by the ratio
    1/sqrt(N*P / n_student), the output size being int(side * ratio) as the reference computes it."""
    B, N, P, D = tokens.shape
    gh, gw = patch_hw
    if gh * gw != P:
        raise ValueError(f"teacher tokens: {P} patches do not form a {gh}x{gw} grid")
    x = tokens.permute(0, 1, 3, 2).reshape(B * N, D, gh, gw)
    if pe_scale:
        pe = uv_position_encoding(gh, gw, D, img_hw, omega0).to(x)
        x = x + pe_scale * pe.permute(2, 0, 1)[None]
    ratio = 1.0 / math.sqrt(N * P / n_student)
    size = (int(gh * ratio), int(gw * ratio))
    if size[0] * size[1] * N != n_student:
        raise ValueError(f"teacher grid {gh}x{gw} x {N} views resizes to {size}, which does not give the student's "
                         f"{n_student} tokens")
    if size != (gh, gw):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)
    return x.reshape(B, N, D, -1).permute(0, 1, 3, 2).reshape(B, -1, D)


class AlignProjector(nn.Module):
    """The reference's AlignProjector: [LayerNorm(llm_dim)] -> fc1 (llm_dim -> 2 vggt_dim) -> GELU -> fc2
    (2 vggt_dim -> 2 vggt_dim); Xavier-uniform weights, zero biases.

    Args:
        llm_dim: student width. vggt_dim: the teacher's embed width (its tokens are 2 * vggt_dim wide).
        use_vlm_norm: the LayerNorm on the student side (True in the released training configs).
    """

    def __init__(self, llm_dim: int, vggt_dim: int, use_vlm_norm: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(llm_dim, 2 * vggt_dim)
        self.fc2 = nn.Linear(2 * vggt_dim, 2 * vggt_dim)
        self.act_fn1 = nn.GELU()
        self.vlm_norm = nn.LayerNorm(llm_dim) if use_vlm_norm else None
        for m in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.vlm_norm is not None:
            x = self.vlm_norm(x)
        return self.fc2(self.act_fn1(self.fc1(x)))


def masked_cosine_alignment_loss(student: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
                                 ) -> torch.Tensor:
    """student, target (B, L, D); mask (B, L) bool (True = aligned). Per sample 1 - mean over its unmasked tokens
    of the cosine similarity, averaged over the batch. A sample with no unmasked token adds 0 (the reference's
    mean over an empty set is NaN)."""
    cos = (F.normalize(student.float(), dim=-1) * F.normalize(target.float(), dim=-1)).sum(-1)
    if mask is None:
        mask = torch.ones_like(cos, dtype=torch.bool)
    m = mask.to(cos.dtype)
    n = m.sum(1)
    per = torch.where(n > 0, 1.0 - (cos * m).sum(1) / n.clamp(min=1), torch.zeros_like(n))
    return per.mean()


def vggt_input_images(images01: torch.Tensor, target_size: int) -> torch.Tensor:
    """(B, N, 3, H, W) in [0, 1] -> the teacher's input (the reference's `preprocess_images_from_openpi`, "crop"
    mode): bicubic resize to width `target_size`, height rounded to a multiple of 14 (of the teacher's patch, here
    `target_size`'s own rounding), then a centre crop of the height to `target_size`."""
    B, N, C, H, W = images01.shape
    new_h = round(H * (target_size / W) / 14) * 14 if target_size % 14 == 0 else round(H * target_size / W)
    x = F.interpolate(images01.flatten(0, 1).float(), size=(new_h, target_size), mode="bicubic", align_corners=False)
    if new_h > target_size:
        top = (new_h - target_size) // 2
        x = x[:, :, top:top + target_size]
    return x.reshape(B, N, C, x.shape[-2], target_size)


def build_teacher(cfg, checkpoint: str = "", seed: int = 0) -> nn.Module:
    """A frozen EmbodiedSpatialModel (VGGT-compatible) in eval mode: from a local VGGT/ESM weights file or ESM
    folder, else seeded random weights (tests). Keys the teacher lacks (VGGT's heads) are ignored, as the
    reference loads VGGT-1B with strict=False; a shape mismatch raises naming the key."""
    from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, load_esm_state_dict, read_weights_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = EmbodiedSpatialModel(cfg)
    if checkpoint:
        path = os.path.join(checkpoint, "model.safetensors") if os.path.isdir(checkpoint) else checkpoint
        missing, _ = load_esm_state_dict(teacher, read_weights_file(path, "teacher checkpoint"))
        if missing:
            raise ValueError(f"teacher checkpoint {path}: missing {len(missing)} weights, e.g. {missing[:6]}")
    return teacher.requires_grad_(False).eval()
