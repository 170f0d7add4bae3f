"""FALCON configuration (`method_args` of a falcon PolicyConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.core.config import check, check_range
from vla_ros.policies.spatial_model.esm import ESMConfig


@dataclass
class FalconConfig:
    """Args:
    esm: the Embodied Spatial Model's sizes (ESMConfig.vggt_1b() at paper scale).
    esm_checkpoint: local file (.safetensors or .pt) with VGGT-1B or FALCON ESM weights; '' = from scratch.
    p_drop_depth / p_drop_pose: probability that depth / pose is withheld per training sample (0.33 in FALCON).
    pool: how spatial tokens are pooled over tokens: "max" (MLP head) or "mean" (FALCON's LSTM head).
    adapter_hidden: width of the zero-initialised adapter MLP.
    stage: fine-tuning stage; `freeze[str(stage)]` lists parameter-name prefixes frozen in that stage.
    """

    esm: ESMConfig = field(default_factory=ESMConfig)
    esm_checkpoint: str = ""
    p_drop_depth: float = 0.33
    p_drop_pose: float = 0.33
    pool: str = "max"
    adapter_hidden: int = 128
    stage: int = 1
    freeze: dict[str, list[str]] = field(default_factory=lambda: {"1": ["esm."], "2": []})

    def __post_init__(self):
        check_range("p_drop_depth", self.p_drop_depth, 0.0, 1.0)
        check_range("p_drop_pose", self.p_drop_pose, 0.0, 1.0)
        check(self.pool in ("max", "mean"), "pool", self.pool, "expected 'max' or 'mean'")
        check(str(self.stage) in self.freeze, "stage", self.stage, f"no freeze list for it in {list(self.freeze)}")
