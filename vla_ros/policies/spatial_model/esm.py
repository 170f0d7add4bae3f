"""A VGGT-compatible Embodied Spatial Model: the aggregator (see aggregator.py) plus VGGT's camera, depth and
(optional) point heads (see heads.py), with parameter names that match a VGGT-1B or FALCON ESM state dict.

Per frame the tokens are [camera, 4 registers, patches] (patch_start_idx = 5); each layer's output is the
frame- and global-attention outputs concatenated (2 * embed_dim). `load_esm_state_dict` loads by key name,
reports missing/unexpected keys and raises `StateDictMismatch` naming the key on a shape mismatch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from vla_ros.core.config import check
from vla_ros.policies.spatial_model.aggregator import DEPTH_SCALE_M, Aggregator, DinoPatchEmbed
from vla_ros.policies.spatial_model.heads import CameraHead, DPTHead

__all__ = ["DEPTH_SCALE_M", "Aggregator", "DinoPatchEmbed", "ESMConfig", "EmbodiedSpatialModel", "StateDictMismatch",
           "load_esm_state_dict", "load_esm_weights", "pose_encoding", "pose_encoding_vggt"]

OPTIONAL_PREFIXES = ("point_head.", "track_head.")  # VGGT heads this model may not build
POSE_FRAMES = ("first_camera", "base")


@dataclass
class ESMConfig:
    """Args:
    embed_dim, heads, depth (frame/global block pairs), patch_size, img_size (pos-embed grid), dino_depth
        (DINOv2 blocks in patch_embed), num_register_tokens, init_values (LayerScale init): the aggregator.
    depth_input / pose_input: FALCON's optional depth and camera-pose inputs.
    camera_head / depth_head / point_head: which VGGT heads to build (off by default: an ESM used for its tokens,
        as in FALCON and Spatial Forcing, needs none; SpatialVLA's depth estimator needs the depth head).
    head_trunk_depth, head_heads: the camera head's trunk. dpt_features, dpt_out_channels: DPT widths.
    dpt_layers: the 4 aggregator layers the DPT heads read ([] = spread evenly over `depth`).
    pose_frame: what the camera head's pretraining target (and, legacy convention only, the pose input) is
        relative to: "first_camera" or "base" (the robot base frame from tf).
    input_convention: how depth and pose enter the aggregator. "vggt" (the reference, FALCON's
        ReplaceAggregator_Depth): depth / mean valid depth of the element's used frames, times the mask; the pose
        (`pose_encoding_vggt`: VGGT absT_quaR_FoV of the extrinsics relative to the first camera, translations
        over their mean distance) REPLACES the camera token. "legacy" (the bundled sim checkpoints): depth / 2 m;
        the pose (`pose_encoding`, pose_frame) is ADDED to the camera token, `camera_placeholder` where absent.
    pos_embed_antialias: antialias the bicubic position-embedding interpolation (DINOv2 in VGGT does; the
        bundled sim checkpoints never interpolate, their grid equals the input's).
    """

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
    camera_head: bool = False
    depth_head: bool = False
    point_head: bool = False
    head_trunk_depth: int = 1
    head_heads: int = 4
    dpt_features: int = 32
    dpt_out_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 64])
    dpt_layers: list[int] = field(default_factory=list)
    pose_frame: str = "first_camera"
    input_convention: Literal["vggt", "legacy"] = "vggt"
    pos_embed_antialias: bool = True

    def __post_init__(self):
        check(self.input_convention in ("vggt", "legacy"), "input_convention", self.input_convention,
              "expected 'vggt' or 'legacy'")
        check(self.pose_frame in POSE_FRAMES, "pose_frame", self.pose_frame, f"expected one of {POSE_FRAMES}")
        check(self.embed_dim % self.heads == 0 and (self.embed_dim // self.heads) % 4 == 0, "embed_dim",
              self.embed_dim, f"must split into {self.heads} heads of a multiple of 4 channels")
        check((2 * self.embed_dim) % self.head_heads == 0, "head_heads", self.head_heads,
              f"must divide 2 * embed_dim = {2 * self.embed_dim}")
        check(len(self.dpt_out_channels) == 4, "dpt_out_channels", self.dpt_out_channels, "expected 4 widths")
        check(not self.dpt_layers or (len(self.dpt_layers) == 4 and all(0 <= i < self.depth for i in self.dpt_layers)),
              "dpt_layers", self.dpt_layers, f"expected 4 layer indices in [0, {self.depth})")
        check(self.dpt_features % 2 == 0 and self.dpt_features >= 4, "dpt_features", self.dpt_features,
              "expected an even number >= 4")

    @property
    def dpt_layer_idx(self) -> list[int]:
        if self.dpt_layers:
            return list(self.dpt_layers)
        return [round(i * (self.depth - 1) / 3) for i in range(4)]

    @classmethod
    def vggt_1b(cls, **kw) -> ESMConfig:
        """Paper scale: VGGT-1B (ViT-L DINOv2 patch embed + 24 frame/global pairs at 1024 wide, its heads)."""
        return cls(**{"embed_dim": 1024, "heads": 16, "depth": 24, "patch_size": 14, "img_size": 518,
                      "dino_depth": 24, "init_values": 1.0, "head_trunk_depth": 4, "head_heads": 16,
                      "dpt_features": 256, "dpt_out_channels": [256, 512, 1024, 1024], "dpt_layers": [4, 11, 17, 23],
                      "camera_head": True, "depth_head": True, "point_head": True, **kw})


class EmbodiedSpatialModel(nn.Module):
    """Aggregator + the configured VGGT heads (geometry pretraining; a depth estimator for SpatialVLA)."""

    def __init__(self, cfg: ESMConfig):
        super().__init__()
        self.cfg = cfg
        self.aggregator = Aggregator(cfg)
        C2 = 2 * cfg.embed_dim
        dpt = {"layers": cfg.dpt_layer_idx, "features": cfg.dpt_features, "out_channels": cfg.dpt_out_channels}
        if cfg.camera_head:
            self.camera_head = CameraHead(C2, cfg.head_trunk_depth, cfg.head_heads)
        if cfg.depth_head:
            self.depth_head = DPTHead(C2, cfg.patch_size, 2, "exp", **dpt)
        if cfg.point_head:
            self.point_head = DPTHead(C2, cfg.patch_size, 4, "inv_log", **dpt)

    def forward(self, images: torch.Tensor, **aggregator_inputs) -> dict:
        """images (B, S, 3, H, W) in [0, 1] (+ the aggregator's optional depth/pose inputs) -> a dict with
        layers, patch_start_idx and, per built head, pose_enc (B, S, 9), depth_m / depth_conf (B, S, H, W),
        world_points (B, S, H, W, 3) / world_points_conf."""
        layers, start = self.aggregator(images, **aggregator_inputs)
        out = {"layers": layers, "patch_start_idx": start}
        hw = tuple(images.shape[-2:])
        if self.cfg.camera_head:
            out["pose_enc_list"] = self.camera_head(layers)
            out["pose_enc"] = out["pose_enc_list"][-1]
        if self.cfg.depth_head:
            depth, out["depth_conf"] = self.depth_head(layers, hw, start)
            out["depth_m"] = depth[..., 0]
        if self.cfg.point_head:
            out["world_points"], out["world_points_conf"] = self.point_head(layers, hw, start)
        return out


def read_esm_config(directory) -> ESMConfig:
    """The ESMConfig saved beside an ESM's weights (config.yaml, key `esm`)."""
    from pathlib import Path

    from vla_ros.core.config import load_yaml

    p = Path(directory) / "config.yaml"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: not found (an ESM folder holds model.safetensors and config.yaml)")
    return load_yaml(ESMConfig, p, "esm")


class StateDictMismatch(ValueError):
    """A checkpoint's tensor does not fit the model; the message names the key and both shapes."""


def read_weights_file(path: str, what: str = "ESM checkpoint") -> dict:
    """A local .safetensors, or a torch .pt/.pth (weights only; a {"model": ...} wrapper unwrapped), as a state
    dict. Nothing is fetched from a hub."""
    import os

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path}: not a local file (nothing is fetched from a hub)")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


def load_esm_state_dict(model: nn.Module, state: dict, prefix_map: dict[str, str] | None = None
                        ) -> tuple[list[str], list[str]]:
    """Load by key name; a shape mismatch raises naming the key. Returns (missing, unexpected) keys.

    Keys of heads the model does not build (e.g. VGGT's `track_head.*`) are reported as unexpected, not errors.
    `prefix_map` renames key prefixes first (e.g. {"model.": ""} for a wrapped checkpoint).
    """
    own = model.state_dict()
    renamed = {}
    for k, v in state.items():
        for old, new in (prefix_map or {}).items():
            if k.startswith(old):
                k = new + k[len(old):]
                break
        renamed[k] = v
    for k, v in renamed.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise StateDictMismatch(f"{k}: checkpoint has shape {tuple(v.shape)}, model expects {tuple(own[k].shape)}")
    if own and next(iter(own.values())).is_meta:
        result = model.load_state_dict(renamed, strict=False, assign=True)
    else:
        result = model.load_state_dict(renamed, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)


ESM_SHAPE_FIELDS = ("embed_dim", "heads", "depth", "patch_size", "dino_depth", "num_register_tokens")


def load_esm_weights(esm: nn.Module, path: str) -> tuple[list[str], list[str]]:
    """VGGT-1B or FALCON ESM weights from a local .safetensors/.pt/.pth file, or an ESM folder written by
    `vla-ros pretrain-esm` (model.safetensors + config.yaml, whose sizes and pose frame must match the model's
    config; the mismatching key is named) -> (missing, unexpected)."""
    import os

    if os.path.isdir(path):
        saved, mine = read_esm_config(path), esm.cfg
        fields = ESM_SHAPE_FIELDS + (("pose_frame",) if saved.pose_input and mine.pose_input else ())
        for f in fields:
            if getattr(saved, f) != getattr(mine, f):
                raise StateDictMismatch(f"{path}: esm.{f} is {getattr(saved, f)!r} in the checkpoint, "
                                        f"{getattr(mine, f)!r} in this config")
        path = os.path.join(path, "model.safetensors")
    return load_esm_state_dict(esm, read_weights_file(path))


def pose_encoding(T_base_camera: torch.Tensor, K: torch.Tensor, image_hw: tuple[int, int],
                  pose_frame: str = "first_camera") -> torch.Tensor:
    """(B, S, 4, 4), (B, S, 3, 3) -> (B, S, 9): t, quaternion xyzw relative to the first camera (or, with
    pose_frame "base", in the base frame), fov_h, fov_w."""
    rel = T_base_camera
    if pose_frame == "first_camera":
        rel = torch.linalg.inv(T_base_camera[:, :1]) @ T_base_camera
    R, t = rel[..., :3, :3], rel[..., :3, 3]
    q = _matrix_to_quat_xyzw(R)
    H, W = image_hw
    fov_h = 2 * torch.atan(H / (2 * K[..., 1, 1]))
    fov_w = 2 * torch.atan(W / (2 * K[..., 0, 0]))
    return torch.cat([t, q, fov_h[..., None], fov_w[..., None]], -1)


def pose_encoding_vggt(T_base_camera: torch.Tensor, K: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """FALCON/VGGT pose input: (B, S, 4, 4) camera poses in a common frame, (B, S, 3, 3) -> (B, S, 9).

    VGGT extrinsics are camera-from-world (E_i = T_i^-1); they are normalised to the first camera
    (E_i E_0^-1 = T_i^-1 T_0), the translations divided by their mean norm over the S frames (clamped at
    1e-6), then encoded absT_quaR_FoV: [t (3), quaternion xyzw (4), fov_h, fov_w]."""
    rel = torch.linalg.inv(T_base_camera) @ T_base_camera[:, :1]
    t = rel[..., :3, 3]
    scale = t.norm(dim=-1).mean(1, keepdim=True).clamp(min=1e-6)  # (B, 1); frame 0 contributes 0
    t = t / scale[..., None]
    q = _matrix_to_quat_xyzw(rel[..., :3, :3])
    H, W = image_hw
    fov_h = 2 * torch.atan((H / 2) / K[..., 1, 1])
    fov_w = 2 * torch.atan((W / 2) / K[..., 0, 0])
    return torch.cat([t, q, fov_h[..., None], fov_w[..., None]], -1).float()


def _matrix_to_quat_xyzw(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices -> unit quaternions xyzw with w >= 0 (branch on the largest diagonal term: stable
    for every rotation, including 180 degrees)."""
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    cands = torch.stack([
        torch.stack([1 + m00 - m11 - m22, R[..., 0, 1] + R[..., 1, 0], R[..., 0, 2] + R[..., 2, 0],
                     R[..., 2, 1] - R[..., 1, 2]], -1),
        torch.stack([R[..., 0, 1] + R[..., 1, 0], 1 - m00 + m11 - m22, R[..., 1, 2] + R[..., 2, 1],
                     R[..., 0, 2] - R[..., 2, 0]], -1),
        torch.stack([R[..., 0, 2] + R[..., 2, 0], R[..., 1, 2] + R[..., 2, 1], 1 - m00 - m11 + m22,
                     R[..., 1, 0] - R[..., 0, 1]], -1),
        torch.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1],
                     1 + m00 + m11 + m22], -1),
    ], -2)  # (..., 4, 4): row i is 4 * q_i * q
    best = torch.diagonal(cands, dim1=-2, dim2=-1).argmax(-1)  # the largest of 4 q_i^2
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., 3:4] < 0, -q, q)
