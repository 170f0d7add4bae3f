"""Spatial Forcing targets: the frozen teacher's last-layer patch tokens plus a 2-D sin-cos positional
encoding (scale 0.1), bilinearly resized to the VLA's visual-token grid; the loss is 1 - mean cosine."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sincos_2d(dim: int, gh: int, gw: int) -> torch.Tensor:
    """(gh*gw, dim) 2-D sin-cos positional encoding: [sin y, cos y, sin x, cos x], dim/4 frequencies each."""
    if dim % 4:
        raise ValueError(f"sin-cos PE needs a channel count divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32),
                            indexing="ij")
    parts = []
    for coord in (ys.flatten(), xs.flatten()):
        ang = coord[:, None] * omega[None]
        parts += [ang.sin(), ang.cos()]
    return torch.cat(parts, 1)


def teacher_images(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """(B, S, 3, H, W) -> the teacher's input size (bilinear), e.g. 518 for VGGT-1B."""
    if rgb.shape[-2:] == (size, size):
        return rgb
    B, S = rgb.shape[:2]
    x = F.interpolate(rgb.flatten(0, 1).float(), size=(size, size), mode="bilinear", align_corners=False)
    return x.reshape(B, S, 3, size, size)


def alignment_target(teacher_tokens: torch.Tensor, grid_hw: tuple[int, int], pe_scale: float,
                     teacher_grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Teacher patch tokens (B, S, P, D) + pe_scale * PE, bilinearly resized to the VLA grid -> (B, S*gh*gw, D)."""
    B, S, P, D = teacher_tokens.shape
    th, tw = teacher_grid or (int(round(P ** 0.5)),) * 2
    if th * tw != P:
        raise ValueError(f"teacher tokens: {P} patches do not form a {th}x{tw} grid")
    x = teacher_tokens + pe_scale * sincos_2d(D, th, tw).to(teacher_tokens)
    x = x.reshape(B * S, th, tw, D).permute(0, 3, 1, 2)
    if (th, tw) != tuple(grid_hw):
        x = F.interpolate(x, size=grid_hw, mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(B, S * grid_hw[0] * grid_hw[1], D)


def cosine_alignment_loss(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean over tokens of cos(student, target)."""
    return 1.0 - F.cosine_similarity(student, target, dim=-1).mean()
