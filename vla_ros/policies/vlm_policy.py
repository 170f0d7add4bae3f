"""The shared policy body: a VLM's learned action token through the action head. The baseline is this body with
no spatial input; compact FALCON, Spatial Forcing and the SpatialVLA look-alike derive from it and add theirs, so
a comparison isolates the spatial part. Not a method itself (no `method` name, never registered)."""
from __future__ import annotations

from torch import nn

from vla_ros.core.normalize import NormStats
from vla_ros.policies.backbones.build import build_vlm
from vla_ros.policies.base import Policy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.heads import make_head


class VLMPolicy(Policy):
    """VLM (`config.vlm`) + action head (`config.head`); `encode` returns the VLM's outputs unchanged."""

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        super().__init__(config, norm_stats, external_weights)
        self.vlm = build_vlm(config, external_weights)
        self.head = make_head(config.head, self.vlm.width, config.horizon, len(config.arm_names))
        if config.head.subgoal_weight > 0:  # training-only auxiliary target (see HeadConfig.subgoal_weight)
            self.subgoal_head = nn.Linear(self.vlm.width, 3 * len(config.arm_names))

    def reset(self) -> None:
        if hasattr(self.head, "reset"):
            self.head.reset()

    def run_vlm(self, batch: dict, vision_add=None) -> dict:
        return self.vlm(batch["rgb"], batch["instruction"], self.actions.normalize_proprio(batch["proprio"]),
                        vision_add)

    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        return self.run_vlm(batch)
