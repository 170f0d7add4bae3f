"""The VGGT aggregator: a DINOv2 patch embedding, then alternating frame/global attention over
[camera token, 4 register tokens, patch tokens] per frame, with FALCON's optional depth and pose inputs.

Parameter names follow VGGT (`patch_embed.*`, `camera_token`, `register_token`, `frame_blocks.i.*`,
`global_blocks.i.*`) so its state dict loads by key; FALCON's extras are `depth_patch_embed.proj`,
`depth_placeholder`, `pose_embedding` and `camera_placeholder`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.policies.spatial_model.layers import Block

if TYPE_CHECKING:
    from vla_ros.policies.spatial_model.esm import ESMConfig

DEPTH_SCALE_M = 2.0  # depth is fed to the ESM as depth_m / DEPTH_SCALE_M


class DinoPatchEmbed(nn.Module):
    """DINOv2-style ViT with register tokens; returns the normalized patch tokens."""

    def __init__(self, cfg: ESMConfig):
        super().__init__()
        C, g = cfg.embed_dim, cfg.img_size // cfg.patch_size
        self.patch_size = cfg.patch_size
        self.antialias = cfg.pos_embed_antialias
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + g * g, C) * 0.02)
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, C))
        self.mask_token = nn.Parameter(torch.zeros(1, C))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, C, cfg.patch_size, cfg.patch_size)
        self.blocks = nn.ModuleList(Block(C, cfg.heads, init_values=cfg.init_values) for _ in range(cfg.dino_depth))
        self.norm = nn.LayerNorm(C)

    def patch_pos_embed(self, gh: int, gw: int) -> torch.Tensor:
        """(1, gh * gw, C): the patch position embedding on a gh x gw grid (DINOv2/VGGT: bicubic in float32,
        antialiased unless pos_embed_antialias is off; unchanged on the stored grid)."""
        pos = self.pos_embed
        g0 = int((pos.shape[1] - 1) ** 0.5)
        patch_pos = pos[:, 1:]
        if (gh, gw) != (g0, g0):
            grid = patch_pos.float().reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
            patch_pos = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False,
                                      antialias=self.antialias)
            patch_pos = patch_pos.flatten(2).transpose(1, 2).to(pos.dtype)
        return patch_pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        p = self.patch_embed.proj(x)
        gh, gw = p.shape[-2:]
        p = p.flatten(2).transpose(1, 2)
        pos = self.pos_embed
        patch_pos = self.patch_pos_embed(gh, gw)
        x = torch.cat([self.cls_token.expand(B, -1, -1) + pos[:, :1], self.register_tokens.expand(B, -1, -1),
                       p + patch_pos], 1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 1 + self.register_tokens.shape[1]:]


class Aggregator(nn.Module):
    def __init__(self, cfg: ESMConfig):
        super().__init__()
        C = cfg.embed_dim
        self.cfg = cfg
        self.patch_start_idx = 1 + cfg.num_register_tokens
        self.patch_embed = DinoPatchEmbed(cfg)
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, C) * 1e-6)
        self.register_token = nn.Parameter(torch.randn(1, 2, cfg.num_register_tokens, C) * 1e-6)
        self.frame_blocks = nn.ModuleList(Block(C, cfg.heads, qk_norm=True, rope=True, init_values=cfg.init_values)
                                          for _ in range(cfg.depth))
        self.global_blocks = nn.ModuleList(Block(C, cfg.heads, qk_norm=True, rope=True, init_values=cfg.init_values)
                                           for _ in range(cfg.depth))
        if cfg.depth_input:
            self.depth_patch_embed = nn.Module()
            self.depth_patch_embed.proj = nn.Conv2d(2, C, cfg.patch_size, cfg.patch_size)
            self.depth_placeholder = nn.Parameter(torch.zeros(1, 1, C))
        if cfg.pose_input:
            self.pose_embedding = nn.Linear(9, C)
            self.camera_placeholder = nn.Parameter(torch.zeros(1, 1, C))
        self.register_buffer("_resnet_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("_resnet_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor, depth: torch.Tensor | None = None, depth_valid: torch.Tensor | None = None,
                pose9: torch.Tensor | None = None, depth_on: torch.Tensor | None = None,
                pose_on: torch.Tensor | None = None) -> tuple[list[torch.Tensor], int]:
        """images (B, S, 3, H, W) in [0, 1]; depth/depth_valid (B, S, H, W); pose9 (B, S, 9); depth_on/pose_on,
        (B,) or (B, S) bool, select per sample (or per frame) whether the optional input is used.

        cfg.input_convention "vggt" (FALCON's ReplaceAggregator_Depth): depth / mean valid depth over the
        element's used frames, times the mask; pose9 REPLACES the camera token; frames without a pose keep the
        stock camera token. "legacy": depth / DEPTH_SCALE_M; pose9 is ADDED to the camera token and
        `camera_placeholder` added where no pose is used. Either way `depth_placeholder` is added to the patch
        tokens of frames without depth. Returns per-layer tokens (B, S, 5 + P, 2C) and patch_start_idx."""
        B, S, _, H, W = images.shape
        C = self.cfg.embed_dim
        x = (images - self._resnet_mean) / self._resnet_std
        patches = self.patch_embed(x.flatten(0, 1))  # (B*S, Np, C)
        gh, gw = H // self.cfg.patch_size, W // self.cfg.patch_size
        vggt = self.cfg.input_convention == "vggt"
        if self.cfg.depth_input:
            placeholder = self.depth_placeholder.expand(B * S, patches.shape[1], C)
            if depth is not None:
                valid = (depth_valid if depth_valid is not None else depth > 0).to(depth.dtype)
                on = _frames(depth_on, B, S, x.device)
                d = normalize_depth_mean_valid(depth, valid, on) if vggt else depth / DEPTH_SCALE_M
                d_in = torch.stack([d, valid], 2).flatten(0, 1).to(self.depth_patch_embed.proj.weight.dtype)
                d_tok = self.depth_patch_embed.proj(d_in).flatten(2).transpose(1, 2)
                patches = patches + torch.where(on.reshape(B * S, 1, 1), d_tok.to(patches.dtype), placeholder)
            else:
                patches = patches + placeholder
        cam = torch.cat([self.camera_token[:, :1].expand(B, 1, -1, -1),
                         self.camera_token[:, 1:].expand(B, S - 1, -1, -1)], 1)
        reg = torch.cat([self.register_token[:, :1].expand(B, 1, -1, -1),
                         self.register_token[:, 1:].expand(B, S - 1, -1, -1)], 1)
        if self.cfg.pose_input:
            on = _frames(pose_on, B, S, x.device)[..., None, None]  # (B, S, 1, 1)
            if vggt:
                if pose9 is not None:
                    emb = self.pose_embedding(pose9.to(self.pose_embedding.weight.dtype))[:, :, None]
                    cam = torch.where(on, emb.to(cam.dtype), cam)
            else:
                ph = self.camera_placeholder.expand(B, S, C)[:, :, None]
                if pose9 is not None:
                    cam = cam + torch.where(on, self.pose_embedding(pose9)[:, :, None], ph)
                else:
                    cam = cam + ph
        tokens = torch.cat([cam, reg, patches.reshape(B, S, -1, C)], 2)  # (B, S, N, C)
        N = tokens.shape[2]
        ys, xs = torch.meshgrid(torch.arange(gh, device=x.device), torch.arange(gw, device=x.device), indexing="ij")
        pos = torch.cat([torch.zeros(self.patch_start_idx, 2, dtype=torch.long, device=x.device),
                         torch.stack([ys.flatten(), xs.flatten()], 1) + 1])
        outputs = []
        t = tokens
        for fb, gb in zip(self.frame_blocks, self.global_blocks):
            f = fb(t.reshape(B * S, N, C), pos).reshape(B, S, N, C)
            g = gb(f.reshape(B, S * N, C), pos.repeat(S, 1)).reshape(B, S, N, C)
            outputs.append(torch.cat([f, g], -1))
            t = g
        return outputs, self.patch_start_idx


def _frames(on: torch.Tensor | None, B: int, S: int, device) -> torch.Tensor:
    """(B,) or (B, S) bool (None = all) -> (B, S) bool."""
    if on is None:
        return torch.ones(B, S, dtype=torch.bool, device=device)
    on = on.to(device).bool()
    return on[:, None].expand(B, S) if on.dim() == 1 else on


def normalize_depth_mean_valid(depth: torch.Tensor, valid: torch.Tensor, used: torch.Tensor,
                               eps: float = 1e-8) -> torch.Tensor:
    """FALCON's depth input: per batch element, depth / (mean of depth where valid > 0 over the element's used
    frames + eps), then times the mask; an element with no valid pixel gets zeros. depth, valid (B, S, H, W);
    used (B, S) bool."""
    w = valid * used[..., None, None].to(valid.dtype)
    n = (w > 0).flatten(1).sum(1)
    mean = (depth * (w > 0)).flatten(1).sum(1) / n.clamp(min=1)
    out = depth / (mean + eps)[:, None, None, None] * valid
    return torch.where((n > 0)[:, None, None, None], out, torch.zeros_like(out))
