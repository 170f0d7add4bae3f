"""SpatialVLA configuration (`method_args`): the released model config (config.json), the processor's action and
camera data (processor_config.json), and the run-time choices, each a reference default or a named departure.

`paper_model_config()` is the released spatialvla-4b-224 layout (SigLIP So400m/14 at 224, Gemma2 2B with the
8,194 action tokens appended, ZoeDepth NK); `tiny_model_config()` is the same architecture at small widths.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

from vla_ros.core.config import check, check_range

N_SPATIAL_TOKENS = 16 * 32 * 8 + 16 ** 3 + 2  # theta*phi*r + roll*pitch*yaw + gripper = 8194

# action_config["num_bins"] of the released processor (scripts/action_config.json in the reference).
REFERENCE_NUM_BINS = {"translation": {"theta_bins": 16, "phi_bins": 32, "r_bins": 8},
                      "rotation": {"roll_bins": 16, "pitch_bins": 16, "yaw_bins": 16}, "gripper": 2}

# Bridge camera of the reference's scripts/intrinsics.json (also its "default").
BRIDGE_INTRINSICS = {"width": 640, "height": 480,
                     "intrinsic": [[623.588, 0.0, 319.501], [0.0, 623.588, 239.545], [0.0, 0.0, 1.0]]}


def paper_model_config() -> dict:
    """config.json of IPEC-COMMUNITY/spatialvla-4b-224-pt (model part), as the reference code builds it."""
    text_vocab = 257153 + N_SPATIAL_TOKENS
    return {
        "model_type": "spatialvla",
        "image_token_index": 257152,
        "action_token_begin_idx": 257153,
        "spatial_token_num": N_SPATIAL_TOKENS,
        "projection_dim": 2304,
        "hidden_size": 2048,
        "ego3d_patch_reso": 2,
        "n_freqs": 8,
        "use_vision_zoe": True,
        "use_spatial_token": True,
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                          "num_hidden_layers": 27, "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
                          "vision_use_head": False},
        "text_config": {"model_type": "gemma2", "hidden_size": 2304, "intermediate_size": 9216,
                        "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                        "head_dim": 256, "vocab_size": text_vocab, "query_pre_attn_scalar": 256,
                        "sliding_window": 4096, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
                        "tie_word_embeddings": False, "hidden_activation": "gelu_pytorch_tanh"},
        "vision_zoe_config": {
            "model_type": "zoedepth",
            "backbone_config": {"model_type": "beit", "image_size": 384, "num_hidden_layers": 24, "hidden_size": 1024,
                                "intermediate_size": 4096, "num_attention_heads": 16,
                                "use_relative_position_bias": True, "reshape_hidden_states": False,
                                "out_features": ["stage6", "stage12", "stage18", "stage24"]},
            "bin_configurations": [{"n_bins": 64, "min_depth": 0.001, "max_depth": 10.0, "name": "nyu"},
                                   {"n_bins": 64, "min_depth": 0.001, "max_depth": 80.0, "name": "kitti"}],
            "num_patch_transformer_layers": 4, "patch_transformer_hidden_size": 128,
            "patch_transformer_intermediate_size": 1024, "patch_transformer_num_attention_heads": 4,
        },
    }


def tiny_model_config(base_vocab: int = 100) -> dict:
    """The same architecture at small widths (tests, the simulator). `base_vocab`: text tokens before <image>."""
    cfg = paper_model_config()
    cfg.update(image_token_index=base_vocab, action_token_begin_idx=base_vocab + 1, projection_dim=32)
    cfg["vision_config"].update(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2)
    cfg["text_config"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=512,
                              vocab_size=base_vocab + 1 + N_SPATIAL_TOKENS)
    zoe = cfg["vision_zoe_config"]
    zoe["backbone_config"].update(num_hidden_layers=4, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                  out_features=["stage1", "stage2", "stage3", "stage4"])
    zoe.update(neck_hidden_sizes=[8, 8, 16, 16], fusion_hidden_size=16, bottleneck_features=16,
               num_relative_features=8, bin_embedding_dim=8, num_attractors=[4, 2, 2, 1],
               bin_configurations=[{"n_bins": 8, "min_depth": 0.001, "max_depth": 10.0, "name": "nyu"},
                                   {"n_bins": 8, "min_depth": 0.001, "max_depth": 80.0, "name": "kitti"}],
               # 128: transformers' domain classifier expects it
               patch_transformer_hidden_size=128, patch_transformer_intermediate_size=16,
               patch_transformer_num_attention_heads=2)  # 4 layers: transformers runs exactly 4
    return cfg


def uniform_bin_policy(num_bins: dict | None = None) -> dict:
    """The reference's bin_policy without Gaussians: uniform edges over each variable's range."""
    import numpy as np

    from vla_ros.policies.spatialvla.processing_spatialvla import RANGES

    nb = num_bins or REFERENCE_NUM_BINS
    return {group: {name: np.linspace(*RANGES[name], nb[group][name] + 1).tolist() for name in nb[group]}
            for group in ("translation", "rotation")}


@dataclass
class SpatialVLAConfig:
    """Args:
    model: the released config.json (model part): vision_config (SigLIP), text_config (Gemma2),
        vision_zoe_config (ZoeDepth), image_token_index, action_token_begin_idx, spatial_token_num,
        ego3d_patch_reso, n_freqs, use_vision_zoe, use_spatial_token, projection_dim.
    tokenizer_file: the checkpoint's tokenizer.json ('' = a small character tokenizer built for the tiny
        config, whose <image> and action ids follow the model config).
    statistics: per dataset key {action: {q01, q99, mask, ...}, ...} (processor_config.json).
    unnorm_key: the statistics (and intrinsics) key to un-normalise with ('' = the only key, when one).
    bin_policy: explicit bin edges {translation: {theta_bins, phi_bins, r_bins}, rotation: {roll_bins, ...}}.
    num_bins: action_config.num_bins. use_spherical: translation in spherical coordinates (reference: true).
    min_sigma: training from a dataset (`vla-ros train`): the floor on each Gaussian's sigma when the bin edges
        are fitted to the data's normalised actions (the reference's pretraining scripts: 0.5).
    intrinsic_config: per dataset key {width, height, intrinsic 3x3} ('default' used for unknown keys).
    action_chunk_size: steps per chunk (reference: 4); generation produces 3 tokens per step.
    depth_source: "zoe" (reference: ZoeDepth always) or "sensor" (departure: the observation's depth when it
        is fresh, ZoeDepth otherwise).
    intrinsics_source: "checkpoint" (reference: the processor's K for unnorm_key, rescaled) or "camera_info"
        (departure: the live CameraInfo K, rescaled with the image).
    constrain_action_tokens: departure: restrict each generated token to its slot's action ids (translation,
        rotation, gripper); the reference decodes unconstrained (false).
    ensemble: "none" (the model's chunk) or "simpler" (SimplerEnv's ActionEnsembler over the last
        ensemble_horizon chunks, weights exp(-ensemble_temp * k), k = 0 oldest; gripper then thresholded at 0.5).
    execute_steps: steps of each chunk to publish (0 = all; SimplerEnv executes 1 per inference).
    dtype: float32 | bfloat16 (the reference's inference dtype) | float16.
    train_mask_padding: departure: in the training loss, keep padded positions masked; the reference's training
        mask re-opens them with the prompt columns (false).
    train_intrinsics: K in the training loss: "default" (reference: its dataset calls the processor without
        unnorm_key) or "unnorm_key" (departure: the K inference uses).
    """

    model: dict = field(default_factory=tiny_model_config)
    tokenizer_file: str = ""
    statistics: dict = field(default_factory=dict)
    unnorm_key: str = ""
    bin_policy: dict = field(default_factory=uniform_bin_policy)
    num_bins: dict = field(default_factory=lambda: copy.deepcopy(REFERENCE_NUM_BINS))
    use_spherical: bool = True
    min_sigma: float = 0.5
    intrinsic_config: dict = field(default_factory=lambda: {"default": copy.deepcopy(BRIDGE_INTRINSICS)})
    action_chunk_size: int = 4
    depth_source: Literal["zoe", "sensor"] = "zoe"
    intrinsics_source: Literal["checkpoint", "camera_info"] = "checkpoint"
    constrain_action_tokens: bool = False
    ensemble: Literal["none", "simpler"] = "none"
    ensemble_horizon: int = 4
    ensemble_temp: float = -0.8
    execute_steps: int = 0
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    train_mask_padding: bool = False
    train_intrinsics: Literal["default", "unnorm_key"] = "default"

    def __post_init__(self):
        check(self.model.get("model_type") == "spatialvla", "model.model_type", self.model.get("model_type"),
              "expected 'spatialvla'")
        for k in ("vision_config", "text_config", "vision_zoe_config", "image_token_index", "action_token_begin_idx",
                  "spatial_token_num"):
            check(k in self.model, f"model.{k}", None, "required by the SpatialVLA config")
        check_range("action_chunk_size", self.action_chunk_size, 1, 64)
        check_range("min_sigma", self.min_sigma, 0.0, 10.0)
        check_range("ensemble_horizon", self.ensemble_horizon, 1, 64)
        check_range("execute_steps", self.execute_steps, 0, self.action_chunk_size)
        n = (self.num_bins["translation"]["theta_bins"] * self.num_bins["translation"]["phi_bins"]
             * self.num_bins["translation"]["r_bins"] + self.num_bins["rotation"]["roll_bins"]
             * self.num_bins["rotation"]["pitch_bins"] * self.num_bins["rotation"]["yaw_bins"]
             + self.num_bins["gripper"])
        check(n == self.model["spatial_token_num"], "num_bins", self.num_bins,
              f"gives {n} action tokens but model.spatial_token_num is {self.model['spatial_token_num']}")
        check("default" in self.intrinsic_config or self.unnorm_key in self.intrinsic_config, "intrinsic_config",
              sorted(self.intrinsic_config), f"needs 'default' or the unnorm_key {self.unnorm_key!r}")
