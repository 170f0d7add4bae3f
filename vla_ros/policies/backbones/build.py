"""Build the configured VLM backbone."""
from __future__ import annotations

from vla_ros.policies.config import PolicyConfig


def build_vlm(cfg: PolicyConfig):
    if cfg.vlm.kind == "tiny":
        from vla_ros.policies.backbones.tiny_vlm import TinyVLM

        return TinyVLM(cfg.vlm, len(cfg.camera_names), cfg.image_size, cfg.proprio_dim)
    from vla_ros.policies.backbones.hf_vlm import HFVLM

    return HFVLM(cfg.vlm, len(cfg.camera_names), cfg.image_size, cfg.proprio_dim)
