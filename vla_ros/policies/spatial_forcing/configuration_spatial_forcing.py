"""Spatial Forcing configuration (`method_args`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.core.config import check_range
from vla_ros.policies.spatial_model.esm import ESMConfig


@dataclass
class SpatialForcingConfig:
    """Args:
    teacher: sizes of the frozen 3-D teacher (any ESM/VGGT; ESMConfig.vggt_1b() at paper scale); used in
        training only and never saved.
    teacher_checkpoint: local weights of the teacher ('' = a seeded random teacher, for tests only).
    align_layer: VLM layer k whose visual-token span is aligned (index into hidden states, 0 = embeddings).
    alpha: weight of the alignment loss (total = action + alpha * align; 0.5 in Spatial Forcing).
    pe_scale: scale of the positional encoding added to the teacher's tokens before resizing (0.1).
    projector_hidden: hidden width of the projector (0 = the reference's: the teacher's token width, 2 x
        teacher.embed_dim; with legacy_target, twice the VLM width).
    teacher_seed: seed of the random teacher when no checkpoint is given.
    legacy_target: the target of vla_ros before it followed the reference (the bundled sim_spatial_forcing
        checkpoint was trained with it): a sin-cos encoding of patch indices (omega 10000) instead of VGGT's UV
        grid (omega0 100), bilinear resize with align_corners=False, the teacher's input resized bilinearly,
        projector hidden width twice the VLM width. False = the reference (Spatial-Forcing `custom_pooling`,
        `AlignProjector`).
    """

    teacher: ESMConfig = field(default_factory=lambda: ESMConfig(depth_input=False, pose_input=False))
    teacher_checkpoint: str = ""
    align_layer: int = 2
    alpha: float = 0.5
    pe_scale: float = 0.1
    projector_hidden: int = 0
    teacher_seed: int = 0
    legacy_target: bool = False

    def __post_init__(self):
        check_range("alpha", self.alpha, 0.0, 100.0)
        check_range("align_layer", self.align_layer, 0, 128)
        check_range("projector_hidden", self.projector_hidden, 0, 65536)
