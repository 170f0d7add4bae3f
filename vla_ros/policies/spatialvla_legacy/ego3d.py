"""Ego3D position encoding (SpatialVLA): depth back-projected with K^-1 at 2x2 points per patch (12 values),
normalised as (xyz - [0, 0, 2]) / 2, encoded sinusoidally (8 log-spaced frequencies plus the raw value) and
mapped by an MLP to the vision width, then added to the vision tokens."""
from __future__ import annotations

import torch
from torch import nn

CENTRE_M = torch.tensor([0.0, 0.0, 2.0])
SCALE_M = 2.0


def backproject_patch_points(depth_m: torch.Tensor, K: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, S, H, W), (B, S, 3, 3) -> (B, S * gh * gw, 12) camera-frame points at 2x2 pixels per patch.

    In patch (i, j) the four pixels are (row, col) = (i*P + P//4 + a*P//2, j*P + P//4 + b*P//2), a, b in {0, 1}.
    """
    B, S, H, W = depth_m.shape
    gh, gw = H // patch, W // patch
    offs = torch.tensor([patch // 4, patch // 4 + patch // 2], device=depth_m.device)
    rows = (torch.arange(gh, device=depth_m.device)[:, None] * patch + offs).reshape(-1)  # (gh*2,)
    cols = (torch.arange(gw, device=depth_m.device)[:, None] * patch + offs).reshape(-1)  # (gw*2,)
    d = depth_m[:, :, rows][:, :, :, cols]  # (B, S, 2gh, 2gw)
    v, u = torch.meshgrid(rows.float(), cols.float(), indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1)  # (2gh, 2gw, 3)
    rays = torch.einsum("bsij,hwj->bshwi", torch.linalg.inv(K.float()), pix)
    xyz = rays * d[..., None]  # (B, S, 2gh, 2gw, 3)
    xyz = xyz.reshape(B, S, gh, 2, gw, 2, 3).permute(0, 1, 2, 4, 3, 5, 6)  # (B, S, gh, gw, 2, 2, 3)
    return xyz.reshape(B, S * gh * gw, 12)


def normalise_points(points: torch.Tensor) -> torch.Tensor:
    return (points.reshape(*points.shape[:-1], 4, 3) - CENTRE_M.to(points)).reshape(points.shape) / SCALE_M


def sinusoidal(x: torch.Tensor, n_freqs: int = 8) -> torch.Tensor:
    """(..., D) -> (..., D * (1 + 2 n_freqs)): raw value, then sin and cos at 2^k * pi, k = 0..n-1."""
    freqs = (2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype)) * torch.pi
    ang = x[..., None] * freqs
    return torch.cat([x, ang.sin().flatten(-2), ang.cos().flatten(-2)], -1)


class Ego3DEncoding(nn.Module):
    def __init__(self, width: int, patch: int, n_freqs: int = 8):
        super().__init__()
        self.patch, self.n_freqs = patch, n_freqs
        self.mlp = nn.Sequential(nn.Linear(12 * (1 + 2 * n_freqs), width), nn.GELU(), nn.Linear(width, width))

    def forward(self, depth_m: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        pts = normalise_points(backproject_patch_points(depth_m, K, self.patch))
        return self.mlp(sinusoidal(pts, self.n_freqs))
