"""Ego3D position encoding of SpatialVLA, as the reference (`model/modeling_spatialvla.py`):

- back-projection: depth area-resized to the (grid * reso)^2 sub-patch grid; pixel centres at
  (k + 0.5) * patch / reso; p_cam = K^-1 [u, v, 1]^T * depth; per patch the reso^2 points, row-major, xyz;
- encoding: xyz_n = (xyz - [0, 0, 2]) / 2; per coordinate [x, sin(2^k x) for k < n, cos(2^k x) for k < n];
- MLP `position_embedding_head` = Linear(in, width), LayerNorm, ReLU, Linear(width, width).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def subpatch_pixels(image_size: int, patch_size: int, reso: int) -> torch.Tensor:
    """(3, (image_size / (patch / reso))^2) homogeneous pixel centres [u, v, 1], row-major."""
    step = patch_size // reso
    y, x = torch.meshgrid(torch.arange(0, image_size, step), torch.arange(0, image_size, step), indexing="ij")
    y, x = y + patch_size / reso / 2, x + patch_size / reso / 2
    return torch.stack([x, y, torch.ones_like(x)], 0).reshape(3, -1).float()


def backproject_patch(K: torch.Tensor, depth: torch.Tensor, uv_h: torch.Tensor, patch_size: int,
                      reso: int) -> torch.Tensor:
    """K (B, 3, 3), depth (B, 1, H, W) metres -> (B, n_patches, 3 * reso^2) camera-frame points."""
    b, c, h, w = depth.shape
    hp, wp = h // patch_size, w // patch_size
    patch_depth = F.interpolate(depth, size=(hp * reso, wp * reso), mode="area").reshape(b, c, -1)
    p_cam = (torch.linalg.inv(K.float()) @ uv_h.float()) * patch_depth
    return p_cam.reshape(b, 3, hp, reso, wp, reso).permute(0, 2, 4, 3, 5, 1).reshape(b, hp * wp, -1)


class Ego3DPositionEmbeddingMLP(nn.Module):
    """Args:
    in_channels: 3 * reso^2 (12 at the released reso 2). num_pos_feats: SigLIP width. n_freqs: 8.
    """

    def __init__(self, in_channels: int = 12, num_pos_feats: int = 1152, n_freqs: int = 8):
        super().__init__()
        self.register_buffer("freq_bands", 2.0 ** torch.linspace(0, n_freqs - 1, n_freqs), persistent=False)
        self.register_buffer("center", torch.tensor([0.0, 0.0, 2.0]).repeat(in_channels // 3), persistent=False)
        n_in = in_channels * (2 * n_freqs + 1)
        self.position_embedding_head = nn.Sequential(nn.Linear(n_in, num_pos_feats), nn.LayerNorm(num_pos_feats),
                                                     nn.ReLU(), nn.Linear(num_pos_feats, num_pos_feats))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p, gain=0.01)

    @torch.no_grad()
    def frequency_encoding(self, xyz: torch.Tensor) -> torch.Tensor:
        """(B, N, M) -> (B, N, M * (2 n + 1)), per coordinate [x, sin(f x) ..., cos(f x) ...]."""
        xyz_n = ((xyz - self.center) / 2.0).to(self.freq_bands.dtype)
        ang = xyz_n.unsqueeze(-1) * self.freq_bands
        return torch.cat([xyz_n.unsqueeze(-1), ang.sin(), ang.cos()], -1).reshape(*xyz.shape[:2], -1)

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        return self.position_embedding_head(self.frequency_encoding(xyz))
