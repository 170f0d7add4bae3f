"""Baseline: the VLM's action token through the action head, with no spatial input."""
from __future__ import annotations

from vla_ros.core.normalize import NormStats
from vla_ros.policies.backbones.build import build_vlm
from vla_ros.policies.base import Policy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.heads import make_head


class BaselinePolicy(Policy):
    method = "baseline"
    TINY_ARGS: dict = {}

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None):
        super().__init__(config, norm_stats)
        self.vlm = build_vlm(config)
        self.head = make_head(config.head, self.vlm.width, config.horizon, len(config.arm_names))

    def reset(self) -> None:
        if hasattr(self.head, "reset"):
            self.head.reset()

    def proprio(self, batch: dict):
        p = batch["proprio"]
        if self.norm_stats is not None and "proprio" in self.norm_stats.stats:
            p = self.norm_stats.normalize("proprio", p)
        return p

    def run_vlm(self, batch: dict, vision_add=None) -> dict:
        return self.vlm(batch["rgb"], batch["instruction"], self.proprio(batch), vision_add)

    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        return self.run_vlm(batch)
