"""Build the configured VLM backbone: the tiny one (built here) or a PaliGemma-class model from a local folder."""
from __future__ import annotations

from vla_ros.policies.config import PolicyConfig


def build_vlm(cfg: PolicyConfig, external_weights: bool = True):
    """external_weights=False builds an HF backbone from its config.json only (a checkpoint supplies weights)."""
    if cfg.vlm.kind == "tiny":
        from vla_ros.policies.backbones.tiny_vlm import TinyVLM

        return TinyVLM(cfg.vlm, len(cfg.camera_names), cfg.image_size, cfg.proprio_dim)
    from vla_ros.policies.backbones.hf_vlm import HFVLM

    return HFVLM(cfg.vlm, len(cfg.camera_names), cfg.image_size, cfg.proprio_dim, load_weights=external_weights)
