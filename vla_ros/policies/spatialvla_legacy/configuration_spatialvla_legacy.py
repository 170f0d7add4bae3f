"""SpatialVLA configuration (`method_args`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.core.config import check, check_range
from vla_ros.policies.spatial_model.esm import ESMConfig
from vla_ros.policies.tokenizers.action_grid import GridSpec


@dataclass
class SpatialVLAConfig:
    """Args:
    grid: Adaptive Action Grid bins (reference: theta 16, phi 32, r 8, rotation 16^3) and fitted Gaussians.
    n_freqs: sinusoidal frequencies of the Ego3D encoding (8).
    depth_estimator_checkpoint: local ESM/VGGT weights whose depth head estimates depth when no sensor depth
        is fresh ('' = no estimator: without sensor depth the policy runs RGB-only, without Ego3D).
    depth_estimator: that ESM's sizes (needs depth_head: true).
    decoder_layers: layers of the autoregressive action-token decoder.
    ensemble: adaptive ensembling of overlapping chunks at inference; ensemble_alpha its sharpness,
        ensemble_history the number of earlier chunks kept. Off by default: the executor can ensemble too.
    """

    grid: GridSpec = field(default_factory=GridSpec)
    n_freqs: int = 8
    depth_estimator_checkpoint: str = ""
    depth_estimator: ESMConfig = field(default_factory=lambda: ESMConfig(depth_input=False, pose_input=False,
                                                                         depth_head=True))
    decoder_layers: int = 1
    ensemble: bool = False
    ensemble_alpha: float = 0.1
    ensemble_history: int = 4

    def __post_init__(self):
        check_range("n_freqs", self.n_freqs, 1, 16)
        check_range("decoder_layers", self.decoder_layers, 1, 12)
        check_range("ensemble_alpha", self.ensemble_alpha, -100.0, 100.0)
        check_range("ensemble_history", self.ensemble_history, 1, 256)
        check(not self.depth_estimator_checkpoint or self.depth_estimator.depth_head, "depth_estimator.depth_head",
              self.depth_estimator.depth_head, "must be true when a depth_estimator_checkpoint is given")
