"""Transformer pieces with VGGT/DINOv2 parameter names: qk-norm attention, 2-D RoPE, LayerScale."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rope_2d(x: torch.Tensor, pos: torch.Tensor, base: float = 100.0) -> torch.Tensor:
    """Rotary embedding over (y, x) positions: half of each head's channels rotate with y, half with x.

    x: (B, H, N, D) with D divisible by 4; pos: (N, 2) integer (y, x).
    """
    D = x.shape[-1]
    quarter = D // 4
    freqs = 1.0 / (base ** (torch.arange(quarter, device=x.device, dtype=torch.float32) / quarter))
    out = []
    for axis, chunk in enumerate(x.split(D // 2, dim=-1)):
        ang = pos[:, axis, None].float() * freqs  # (N, quarter)
        cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
        a, b = chunk[..., :quarter], chunk[..., quarter:]
        out.append(torch.cat([a * cos - b * sin, a * sin + b * cos], -1))
    return torch.cat(out, -1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qk_norm: bool = False, rope: bool = False):
        super().__init__()
        self.heads, self.rope = heads, rope
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = nn.LayerNorm(dim // heads) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(dim // heads) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope and pos is not None:
            q, k = rope_2d(q, pos), rope_2d(k, pos)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, N, C))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float = 0.01):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int | None = None):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out or dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, qk_norm: bool = False, rope: bool = False,
                 init_values: float = 0.01):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, qk_norm, rope)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x, pos=None):
        x = x + self.ls1(self.attn(self.norm1(x), pos))
        return x + self.ls2(self.mlp(self.norm2(x)))
