"""A small vision-language backbone built from the same pieces as the paper-scale ones: ViT patch tokens (or a
conv encoder's grid and keypoint tokens, see conv_keypoints.py) for each camera, word tokens, a proprio token and
a learned action token, through a pre-norm transformer.
Hidden states of every layer are returned (Spatial Forcing aligns an intermediate layer's visual span).
"""
from __future__ import annotations

import zlib

import torch
from torch import nn

from vla_ros.policies.backbones.conv_keypoints import ConvKeypointEncoder
from vla_ros.policies.config import VLMConfig

PAD = 0


class HashTokenizer:
    """Lower-cased words hashed into a fixed vocabulary (deterministic, nothing to download)."""

    def __init__(self, vocab_size: int, max_tokens: int):
        self.vocab_size, self.max_tokens = vocab_size, max_tokens

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.max_tokens, dtype=torch.long)
        for i, text in enumerate(texts):
            words = text.lower().replace(",", " ").replace(".", " ").split()[: self.max_tokens]
            for j, w in enumerate(words):
                out[i, j] = 1 + zlib.crc32(w.encode()) % (self.vocab_size - 1)
        return out


class TinyVLM(nn.Module):
    def __init__(self, cfg: VLMConfig, n_cameras: int, image_size: int, proprio_dim: int):
        super().__init__()
        w = cfg.width
        self.cfg = cfg
        self.grid = image_size // cfg.patch_size
        self.n_vision = n_cameras * self.grid * self.grid
        if cfg.vision == "conv_keypoints":
            self.encoder = ConvKeypointEncoder(w, self.grid, cfg.keypoints)
        else:
            self.patch_embed = nn.Conv2d(3, w, cfg.patch_size, cfg.patch_size)
        self.vision_pos = nn.Parameter(torch.randn(1, self.n_vision, w) * 0.02)
        self.tokenizer = HashTokenizer(cfg.vocab_size, cfg.max_text_tokens)
        self.text_embed = nn.Embedding(cfg.vocab_size, w, padding_idx=PAD)
        self.text_pos = nn.Parameter(torch.randn(1, cfg.max_text_tokens, w) * 0.02)
        self.proprio_embed = nn.Linear(proprio_dim, w)
        self.action_token = nn.Parameter(torch.randn(1, 1, w) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(w, cfg.heads, 4 * w, dropout=0.0, batch_first=True, norm_first=True,
                                       activation="gelu") for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(w)

    @property
    def width(self) -> int:
        return self.cfg.width

    def vision_tokens(self, rgb: torch.Tensor, text: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        """(B, N, 3, H, W) in [0, 1] (+ the pooled instruction (B, width) for the conv encoder) -> grid tokens
        (B, N * grid * grid, width) and extra tokens ([] or the (B, N, width) keypoint tokens)."""
        B, N = rgb.shape[:2]
        x = (rgb.flatten(0, 1) - 0.5) / 0.5
        if self.cfg.vision == "conv_keypoints":
            tokens, keypoints = self.encoder(x, text.repeat_interleave(N, 0))
            return tokens.reshape(B, N * self.grid * self.grid, -1), [keypoints.reshape(B, N, -1)]
        x = self.patch_embed(x)  # (B*N, w, g, g)
        return x.flatten(2).transpose(1, 2).reshape(B, N * self.grid * self.grid, -1), []

    def forward(self, rgb: torch.Tensor, instruction: list[str], proprio: torch.Tensor,
                vision_add: torch.Tensor | None = None) -> dict:
        ids = self.tokenizer(instruction).to(rgb.device)
        words = self.text_embed(ids)
        real = (ids != PAD).to(words.dtype)[..., None]
        pooled = (words * real).sum(1) / real.sum(1).clamp(min=1.0)
        vis, extra = self.vision_tokens(rgb, pooled)
        vis = vis + self.vision_pos
        if vision_add is not None:
            vis = vis + vision_add
        txt = words + self.text_pos
        B = rgb.shape[0]
        action = self.action_token.expand(B, -1, -1)
        if extra:  # the keypoints also enter the action token directly: a short path from "where" to the action
            action = action + extra[0].mean(1, keepdim=True)
        x = torch.cat([vis, *extra, txt, self.proprio_embed(proprio)[:, None], action], 1)
        n_extra = sum(e.shape[1] for e in extra)
        pad = torch.cat([torch.zeros(B, self.n_vision + n_extra, dtype=torch.bool, device=x.device), ids == PAD,
                         torch.zeros(B, 2, dtype=torch.bool, device=x.device)], 1)
        hidden = [x]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
            hidden.append(x)
        x = self.norm(x)
        return {"hidden_states": hidden, "action_hidden": x[:, -1], "vision_span": (0, self.n_vision)}
