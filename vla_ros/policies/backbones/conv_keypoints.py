"""The tiny VLM's conv image encoder: a conv tower at half resolution, FiLM-modulated by the instruction, whose
features are average-pooled to the patch grid (the visual tokens) and turned into image coordinates by a
spatial softmax (one keypoint token per camera: where each channel's evidence is)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def spatial_softmax(feat: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 2C): the expected (x, y) in [-1, 1] of each channel's softmax over the image."""
    B, C, H, W = feat.shape
    p = F.softmax(feat.flatten(2), -1).reshape(B, C, H, W)
    xs = torch.linspace(-1.0, 1.0, W, device=feat.device, dtype=feat.dtype)
    ys = torch.linspace(-1.0, 1.0, H, device=feat.device, dtype=feat.dtype)
    return torch.cat([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], 1)


class ConvKeypointEncoder(nn.Module):
    """Args: width (token width), grid (tokens per side), keypoints (spatial-softmax channels)."""

    def __init__(self, width: int, grid: int, keypoints: int, hidden: int = 64):
        super().__init__()
        self.grid = grid
        # GroupNorm keeps the features O(1) from the first step: without it they start ~1e-3 across images, the
        # keypoint softmax is uniform and its gradient vanishes (the policy then learns the mean action only)
        self.tower = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1), nn.GroupNorm(8, 32), nn.GELU(),
                                   nn.Conv2d(32, 32, 3, 2, 1), nn.GroupNorm(8, 32), nn.GELU(),
                                   nn.Conv2d(32, hidden, 3, 1, 1), nn.GroupNorm(8, hidden), nn.GELU())
        self.film = nn.Linear(width, 2 * hidden)  # instruction -> per-channel scale and shift, zero at start
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.keypoint_conv = nn.Conv2d(hidden, keypoints, 3, 1, 1)
        self.log_temperature = nn.Parameter(torch.tensor(1.5))  # learned softmax sharpness (exp(1.5) = 4.5)
        self.to_token = nn.Linear(hidden, width)
        self.keypoint_token = nn.Linear(2 * keypoints, width)

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B*N, 3, H, W) normalized, text (B*N, width) -> grid tokens (B*N, g*g, width), keypoint token
        (B*N, width)."""
        f = self.tower(images)
        scale, shift = self.film(text).chunk(2, -1)
        f = F.gelu(f * (1 + scale[..., None, None]) + shift[..., None, None])
        tokens = F.adaptive_avg_pool2d(f, self.grid).flatten(2).transpose(1, 2)
        keypoints = spatial_softmax(self.keypoint_conv(f) * self.log_temperature.exp())
        return self.to_token(tokens), self.keypoint_token(keypoints)
