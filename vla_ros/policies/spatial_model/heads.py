"""ESM heads with VGGT's parameter names: the camera head (iterative, adaLN-modulated trunk over the camera
token) and the DPT dense head (depth, and optionally world points), so `camera_head.*`, `depth_head.*` and
`point_head.*` of a VGGT-1B state dict load by key. Widths are configurable so a tiny ESM trains on a CPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.policies.spatial_model.layers import Block, Mlp


class CameraHead(nn.Module):
    """Camera token of the last layer -> pose encoding (B, S, 9): t (3), quaternion xyzw (4), fov_h, fov_w."""

    def __init__(self, dim_in: int, trunk_depth: int = 4, heads: int = 16, init_values: float = 0.01):
        super().__init__()
        self.target_dim = 9
        self.trunk = nn.Sequential(*[Block(dim_in, heads, init_values=init_values) for _ in range(trunk_depth)])
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, self.target_dim))
        self.embed_pose = nn.Linear(self.target_dim, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, out=self.target_dim)

    def forward(self, layers: list[torch.Tensor], iterations: int = 4) -> list[torch.Tensor]:
        tokens = self.token_norm(layers[-1][:, :, 0])  # (B, S, 2C)
        B, S, _ = tokens.shape
        pred, out = None, []
        for _ in range(iterations):
            cond = self.embed_pose(self.empty_pose_tokens.expand(B, S, -1) if pred is None else pred.detach())
            shift, scale, gate = self.poseLN_modulation(cond).chunk(3, dim=-1)
            x = tokens + gate * (self.adaln_norm(tokens) * (1 + scale) + shift)
            delta = self.pose_branch(self.trunk_norm(self.trunk(x)))
            pred = delta if pred is None else pred + delta
            out.append(torch.cat([pred[..., :7], F.relu(pred[..., 7:])], -1))  # field of view stays positive
        return out


def uv_grid(w: int, h: int, aspect: float, like: torch.Tensor) -> torch.Tensor:
    """(h, w, 2) pixel-centre coordinates spanning the unit-diagonal image rectangle."""
    diag = (aspect ** 2 + 1.0) ** 0.5
    sx, sy = aspect / diag, 1.0 / diag
    xs = torch.linspace(-sx * (w - 1) / w, sx * (w - 1) / w, w, dtype=like.dtype, device=like.device)
    ys = torch.linspace(-sy * (h - 1) / h, sy * (h - 1) / h, h, dtype=like.dtype, device=like.device)
    vv, uu = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([uu, vv], -1)


def sincos_1d(dim: int, pos: torch.Tensor, omega_0: float = 100.0) -> torch.Tensor:
    omega = 1.0 / omega_0 ** (torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0))
    ang = pos.reshape(-1, 1).double() * omega
    return torch.cat([ang.sin(), ang.cos()], 1).float()


def add_uv_pos_embed(x: torch.Tensor, W: int, H: int, ratio: float = 0.1) -> torch.Tensor:
    """x (N, C, h, w) + ratio * 2-D sin-cos embedding of its UV grid (half the channels for u, half for v)."""
    N, C, h, w = x.shape
    grid = uv_grid(w, h, W / H, x).reshape(-1, 2)
    pe = torch.cat([sincos_1d(C // 2, grid[:, 0]), sincos_1d(C // 2, grid[:, 1])], 1).to(x.dtype)
    return x + ratio * pe.reshape(h, w, C).permute(2, 0, 1)[None]


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv2 = nn.Conv2d(features, features, 3, 1, 1)

    def forward(self, x):
        h = F.relu(x)  # the reference's in-place ReLU also rectifies the skip path
        return self.conv2(F.relu(self.conv1(h))) + h


class FusionBlock(nn.Module):
    def __init__(self, features: int, has_residual: bool = True):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        if has_residual:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.has_residual = has_residual
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, x, skip=None, size=None):
        if self.has_residual and skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        kw = {"size": size} if size is not None else {"scale_factor": 2}
        return self.out_conv(F.interpolate(x, **kw, mode="bilinear", align_corners=True))


class DPTHead(nn.Module):
    """Four intermediate layers' patch tokens -> multi-scale maps -> fused dense prediction at image size.

    Returns (prediction (B, S, H, W, output_dim - 1), confidence (B, S, H, W)); activation "exp" (depth) or
    "inv_log" (points), confidence 1 + exp.
    """

    def __init__(self, dim_in: int, patch_size: int, output_dim: int, activation: str, layers: list[int],
                 features: int = 256, out_channels: list[int] | None = None):
        super().__init__()
        oc = out_channels or [256, 512, 1024, 1024]
        self.patch_size, self.activation, self.layer_idx = patch_size, activation, list(layers)
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, c, 1) for c in oc)
        self.resize_layers = nn.ModuleList([nn.ConvTranspose2d(oc[0], oc[0], 4, 4),
                                            nn.ConvTranspose2d(oc[1], oc[1], 2, 2), nn.Identity(),
                                            nn.Conv2d(oc[3], oc[3], 3, 2, 1)])
        self.scratch = nn.Module()
        for i, c in enumerate(oc):
            setattr(self.scratch, f"layer{i + 1}_rn", nn.Conv2d(c, features, 3, 1, 1, bias=False))
        for i in range(1, 5):
            setattr(self.scratch, f"refinenet{i}", FusionBlock(features, has_residual=i != 4))
        self.scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, 1, 1)
        self.scratch.output_conv2 = nn.Sequential(nn.Conv2d(features // 2, 32, 3, 1, 1), nn.ReLU(),
                                                  nn.Conv2d(32, output_dim, 1))

    def forward(self, layers: list[torch.Tensor], image_hw: tuple[int, int], patch_start_idx: int):
        H, W = image_hw
        B, S = layers[0].shape[:2]
        gh, gw = H // self.patch_size, W // self.patch_size
        maps = []
        for i, li in enumerate(self.layer_idx):
            x = self.norm(layers[li][:, :, patch_start_idx:].reshape(B * S, gh * gw, -1))
            x = self.projects[i](x.transpose(1, 2).reshape(B * S, -1, gh, gw))
            maps.append(self.resize_layers[i](add_uv_pos_embed(x, W, H)))
        r = [getattr(self.scratch, f"layer{i + 1}_rn")(m) for i, m in enumerate(maps)]
        out = self.scratch.refinenet4(r[3], size=r[2].shape[2:])
        out = self.scratch.refinenet3(out, r[2], size=r[1].shape[2:])
        out = self.scratch.refinenet2(out, r[1], size=r[0].shape[2:])
        out = self.scratch.output_conv1(self.scratch.refinenet1(out, r[0]))
        out = F.interpolate(out, size=(gh * self.patch_size, gw * self.patch_size), mode="bilinear", align_corners=True)
        out = self.scratch.output_conv2(add_uv_pos_embed(out, W, H)).permute(0, 2, 3, 1)  # (B*S, H, W, D)
        pred, conf = out[..., :-1], 1 + out[..., -1].exp()
        pred = pred.exp() if self.activation == "exp" else pred.sign() * torch.expm1(pred.abs())
        return pred.reshape(B, S, *pred.shape[1:]), conf.reshape(B, S, *conf.shape[1:])
