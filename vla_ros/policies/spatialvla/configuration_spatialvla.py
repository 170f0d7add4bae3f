"""SpatialVLA configuration (`method_args`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.core.config import check_range
from vla_ros.policies.spatial_model.esm import ESMConfig
from vla_ros.policies.spatialvla.action_grid import GridSpec


@dataclass
class SpatialVLAConfig:
    """Args:
    grid: Adaptive Action Grid bins (reference: theta 16, phi 32, r 8, rotation 16^3) and fitted Gaussians.
    n_freqs: sinusoidal frequencies of the Ego3D encoding.
    depth_estimator_checkpoint: local ESM weights whose depth head estimates depth when no sensor depth is
        fresh ('' = no estimator: without sensor depth the policy runs RGB-only, without Ego3D).
    depth_estimator: that ESM's sizes.
    decoder_layers: layers of the autoregressive action-token decoder.
    ensemble_decay: temporal ensembling of overlapping chunks at inference (0 = off).
    """

    grid: GridSpec = field(default_factory=GridSpec)
    n_freqs: int = 8
    depth_estimator_checkpoint: str = ""
    depth_estimator: ESMConfig = field(default_factory=lambda: ESMConfig(depth_input=False, pose_input=False))
    decoder_layers: int = 1
    ensemble_decay: float = 0.0

    def __post_init__(self):
        check_range("n_freqs", self.n_freqs, 1, 16)
        check_range("decoder_layers", self.decoder_layers, 1, 12)
        check_range("ensemble_decay", self.ensemble_decay, 0.0, 10.0)
