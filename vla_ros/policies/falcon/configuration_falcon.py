"""FALCON configuration (`method_args` of a falcon PolicyConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.core.config import check, check_range
from vla_ros.policies.spatial_model.esm import ESMConfig


@dataclass
class FalconConfig:
    """Args:
    esm: the Embodied Spatial Model's sizes (ESMConfig.vggt_1b() at paper scale). FALCON reads its tokens
        only, so leave its heads off (their checkpoint keys are then reported as unexpected).
    esm_checkpoint: local file (.safetensors or .pt) with VGGT-1B or FALCON ESM weights; '' = from scratch.
    p_drop_depth / p_drop_pose: probability that depth / pose is withheld per training sample (0.33 in FALCON).
    pool: how spatial tokens are pooled over tokens: "max", "mean", or "auto" (max for the MLP head, mean for
        the LSTM head, as in FALCON).
    adapter_hidden: width of the adapter MLP (its last layer is zero-initialised).
    stage: fine-tuning stage; `freeze[str(stage)]` lists parameter-name prefixes frozen in that stage
        (stage 1: the pretrained ESM stays fixed while VLM, adapter and head learn; stage 2: all train).
    """

    esm: ESMConfig = field(default_factory=ESMConfig)
    esm_checkpoint: str = ""
    p_drop_depth: float = 0.33
    p_drop_pose: float = 0.33
    pool: str = "auto"
    adapter_hidden: int = 128
    stage: int = 1
    freeze: dict[str, list[str]] = field(default_factory=lambda: {"1": ["esm."], "2": []})

    def __post_init__(self):
        check_range("p_drop_depth", self.p_drop_depth, 0.0, 1.0)
        check_range("p_drop_pose", self.p_drop_pose, 0.0, 1.0)
        check(self.pool in ("auto", "max", "mean"), "pool", self.pool, "expected 'auto', 'max' or 'mean'")
        check(str(self.stage) in self.freeze, "stage", self.stage, f"no freeze list for it in {list(self.freeze)}")
        check_range("adapter_hidden", self.adapter_hidden, 1, 65536)
