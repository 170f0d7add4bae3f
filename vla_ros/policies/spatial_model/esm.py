"""A VGGT-compatible Embodied Spatial Model (the aggregator), with FALCON's depth and pose inputs.

Parameter names follow VGGT so its state dict loads by key: `aggregator.patch_embed.*` (a DINOv2 ViT with
register tokens), `aggregator.camera_token` (1, 2, 1, C), `aggregator.register_token` (1, 2, 4, C),
`aggregator.frame_blocks.i.*` and `aggregator.global_blocks.i.*` (qk-norm, 2-D RoPE, LayerScale). Per frame
the tokens are [camera, 4 registers, patches] (patch_start_idx = 5); each layer's output is the frame- and
global-attention outputs concatenated (2 * embed_dim). FALCON adds `aggregator.depth_patch_embed.proj`
(2 channels: normalised depth and validity), `aggregator.depth_placeholder`, `aggregator.pose_embedding`
(9 -> C: t, quaternion xyzw, fov_h, fov_w relative to the first camera) and `aggregator.camera_placeholder`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.core.config import check
from vla_ros.policies.spatial_model.layers import Block

DEPTH_SCALE_M = 2.0  # depth is fed as depth_m / DEPTH_SCALE_M


@dataclass
class ESMConfig:
    """Args: embed_dim, heads, depth (frame/global block pairs), patch_size, img_size (pos-embed grid),
    dino_depth (DINOv2 blocks in patch_embed), num_register_tokens, depth_input/pose_input (FALCON extras),
    init_values (LayerScale init)."""

    embed_dim: int = 64
    heads: int = 4
    depth: int = 2
    patch_size: int = 8
    img_size: int = 64
    dino_depth: int = 1
    num_register_tokens: int = 4
    depth_input: bool = True
    pose_input: bool = True
    init_values: float = 0.01

    def __post_init__(self):
        check(self.embed_dim % self.heads == 0 and (self.embed_dim // self.heads) % 4 == 0, "embed_dim",
              self.embed_dim, f"must split into {self.heads} heads of a multiple of 4 channels")

    @classmethod
    def vggt_1b(cls, **kw) -> ESMConfig:
        """Paper scale: VGGT-1B (ViT-L DINOv2 patch embed + 24 frame/global pairs at 1024 wide)."""
        return cls(**{"embed_dim": 1024, "heads": 16, "depth": 24, "patch_size": 14, "img_size": 518,
                      "dino_depth": 24, "init_values": 1.0, **kw})


class DinoPatchEmbed(nn.Module):
    """DINOv2-style ViT with register tokens; returns the normalized patch tokens."""

    def __init__(self, cfg: ESMConfig):
        super().__init__()
        C, g = cfg.embed_dim, cfg.img_size // cfg.patch_size
        self.patch_size = cfg.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + g * g, C) * 0.02)
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, C))
        self.mask_token = nn.Parameter(torch.zeros(1, C))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, C, cfg.patch_size, cfg.patch_size)
        self.blocks = nn.ModuleList(Block(C, cfg.heads, init_values=cfg.init_values) for _ in range(cfg.dino_depth))
        self.norm = nn.LayerNorm(C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        p = self.patch_embed.proj(x)
        gh, gw = p.shape[-2:]
        p = p.flatten(2).transpose(1, 2)
        pos = self.pos_embed
        g0 = int((pos.shape[1] - 1) ** 0.5)
        patch_pos = pos[:, 1:]
        if (gh, gw) != (g0, g0):
            grid = patch_pos.reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
            patch_pos = F.interpolate(grid, size=(gh, gw), mode="bicubic", align_corners=False)
            patch_pos = patch_pos.flatten(2).transpose(1, 2)
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
        """images (B, S, 3, H, W) in [0, 1]; depth/depth_valid (B, S, H, W); pose9 (B, S, 9); depth_on/pose_on
        (B,) bool select per sample whether the optional input is used (else its placeholder).
        Returns per-layer tokens (B, S, 5 + P, 2C) and patch_start_idx."""
        B, S, _, H, W = images.shape
        C, P = self.cfg.embed_dim, self.cfg.patch_size
        x = (images - self._resnet_mean) / self._resnet_std
        patches = self.patch_embed(x.flatten(0, 1))  # (B*S, Np, C)
        gh, gw = H // P, W // P
        if self.cfg.depth_input:
            placeholder = self.depth_placeholder.expand(B * S, patches.shape[1], C)
            if depth is not None:
                d_in = torch.stack([depth / DEPTH_SCALE_M, depth_valid.float()], 2).flatten(0, 1)
                d_tok = self.depth_patch_embed.proj(d_in).flatten(2).transpose(1, 2)
                on = (depth_on if depth_on is not None else torch.ones(B, dtype=torch.bool, device=x.device))
                on = on.repeat_interleave(S)[:, None, None]
                patches = patches + torch.where(on, d_tok, placeholder)
            else:
                patches = patches + placeholder
        cam = torch.cat([self.camera_token[:, :1].expand(B, 1, -1, -1),
                         self.camera_token[:, 1:].expand(B, S - 1, -1, -1)], 1)
        reg = torch.cat([self.register_token[:, :1].expand(B, 1, -1, -1),
                         self.register_token[:, 1:].expand(B, S - 1, -1, -1)], 1)
        if self.cfg.pose_input:
            ph = self.camera_placeholder.expand(B, S, C)
            if pose9 is not None:
                on = pose_on if pose_on is not None else torch.ones(B, dtype=torch.bool, device=x.device)
                on = on[:, None, None]
                cam = cam + torch.where(on, self.pose_embedding(pose9), ph)[:, :, None]
            else:
                cam = cam + ph[:, :, None]
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


class EmbodiedSpatialModel(nn.Module):
    """Aggregator + light camera and depth heads (for geometry pretraining and as a depth estimator)."""

    def __init__(self, cfg: ESMConfig):
        super().__init__()
        self.cfg = cfg
        self.aggregator = Aggregator(cfg)
        C2, P = 2 * cfg.embed_dim, cfg.patch_size
        self.camera_head = nn.Sequential(nn.LayerNorm(C2), nn.Linear(C2, C2), nn.GELU(), nn.Linear(C2, 9))
        self.depth_head = nn.Sequential(nn.LayerNorm(C2), nn.Linear(C2, 2 * P * P))

    def forward(self, images, **kw) -> dict:
        layers, start = self.aggregator(images, **kw)
        last = layers[-1]
        B, S, _, _, H, W = *last.shape[:2], 0, 0, *images.shape[-2:]
        P = self.cfg.patch_size
        d = self.depth_head(last[:, :, start:]).reshape(B, S, H // P, W // P, 2, P, P)
        d = d.permute(0, 1, 4, 2, 5, 3, 6).reshape(B, S, 2, H, W)
        return {"layers": layers, "patch_start_idx": start, "pose_enc": self.camera_head(last[:, :, 0]),
                "depth_m": F.softplus(d[:, :, 0]) * DEPTH_SCALE_M, "depth_conf": 1 + d[:, :, 1].exp()}


class StateDictMismatch(ValueError):
    """A checkpoint's tensor does not fit the model; the message names the key and both shapes."""


def load_esm_state_dict(model: nn.Module, state: dict, prefix_map: dict[str, str] | None = None
                        ) -> tuple[list[str], list[str]]:
    """Load by key name; shape mismatches raise naming the key. Returns (missing, unexpected) keys.

    VGGT's `point_head.*` and `track_head.*` are optional and reported as unexpected, not errors.
    """
    own = model.state_dict()
    renamed = {}
    for k, v in state.items():
        for old, new in (prefix_map or {}).items():
            if k.startswith(old):
                k = new + k[len(old):]
        renamed[k] = v
    for k, v in renamed.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise StateDictMismatch(f"{k}: checkpoint has shape {tuple(v.shape)}, model expects {tuple(own[k].shape)}")
    result = model.load_state_dict(renamed, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)


def pose_encoding(T_base_camera: torch.Tensor, K: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """(B, S, 4, 4), (B, S, 3, 3) -> (B, S, 9): t, quaternion xyzw relative to the first camera, fov_h, fov_w."""
    T0_inv = torch.linalg.inv(T_base_camera[:, :1])
    rel = T0_inv @ T_base_camera
    R, t = rel[..., :3, :3], rel[..., :3, 3]
    q = _matrix_to_quat_xyzw(R)
    H, W = image_hw
    fov_h = 2 * torch.atan(H / (2 * K[..., 1, 1]))
    fov_w = 2 * torch.atan(W / (2 * K[..., 0, 0]))
    return torch.cat([t, q, fov_h[..., None], fov_w[..., None]], -1)


def _matrix_to_quat_xyzw(R: torch.Tensor) -> torch.Tensor:
    w = torch.sqrt(torch.clamp(1 + R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2], min=1e-8)) / 2
    x = (R[..., 2, 1] - R[..., 1, 2]) / (4 * w)
    y = (R[..., 0, 2] - R[..., 2, 0]) / (4 * w)
    z = (R[..., 1, 0] - R[..., 0, 1]) / (4 * w)
    return torch.stack([x, y, z, w], -1)
