"""π0 configuration (`method_args`). The defaults are the paper model (openpi `Pi0Config`: PaliGemma = SigLIP
So400m/14 + Gemma 2B, action expert Gemma 300M, action_dim 32, 10 denoising steps); tests use the same code at
tiny widths (`Pi0Policy.TINY_ARGS`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vla_ros.core.config import check, check_range
from vla_ros.policies.spatial_model.esm import ESMConfig

# openpi `gemma.get_config` variants: (width, depth, mlp_dim, num_heads, num_kv_heads, head_dim)
GEMMA_VARIANTS = {
    "dummy": (64, 4, 128, 8, 1, 16),
    "gemma_300m": (1024, 18, 4096, 8, 1, 256),
    "gemma_300m_lora": (1024, 18, 4096, 8, 1, 256),
    "gemma_2b": (2048, 18, 16384, 8, 1, 256),
    "gemma_2b_lora": (2048, 18, 16384, 8, 1, 256),
}


@dataclass
class GemmaWidths:
    """One Gemma stack. Args: width, depth (layers), mlp_dim, num_heads, num_kv_heads, head_dim."""

    width: int = 2048
    depth: int = 18
    mlp_dim: int = 16384
    num_heads: int = 8
    num_kv_heads: int = 1
    head_dim: int = 256

    def __post_init__(self):
        for k in ("width", "depth", "mlp_dim", "num_heads", "num_kv_heads", "head_dim"):
            check_range(k, getattr(self, k), 1, 1 << 20)
        check(self.num_heads % self.num_kv_heads == 0, "num_kv_heads", self.num_kv_heads,
              f"must divide num_heads={self.num_heads}")

    @classmethod
    def variant(cls, name: str) -> GemmaWidths:
        if name not in GEMMA_VARIANTS:
            raise ValueError(f"gemma variant {name!r}: expected one of {sorted(GEMMA_VARIANTS)}")
        return cls(*GEMMA_VARIANTS[name])


@dataclass
class SiglipWidths:
    """The SigLIP image encoder (So400m/14 in PaliGemma). Args: hidden_size, num_hidden_layers,
    num_attention_heads, intermediate_size, patch_size (the image size is the policy's image_size)."""

    hidden_size: int = 1152
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    intermediate_size: int = 4304
    patch_size: int = 14

    def __post_init__(self):
        check(self.hidden_size % self.num_attention_heads == 0, "hidden_size", self.hidden_size,
              f"must be divisible by num_attention_heads={self.num_attention_heads}")


@dataclass
class Pi0SpatialForcing:
    """Spatial Forcing on π0 (openpi-SF `pi0_align_pytorch.py`); training only, never run at inference.

    Args:
        enabled: add alpha * alignment loss to the flow-matching loss.
        align_layer: index into the PaliGemma hidden states (0 = embeddings, k = after k layers; 12 of 18).
        teacher_layer: the teacher's aggregator layer (-1 = last, the reference's vggt_layers_align).
        alpha: align_loss_coeff (0.5).
        use_pe: add the VGGT UV-grid encoding to the teacher's tokens before resizing (use_vggt_pe).
        pe_scale, omega0: that encoding's scale (0.1) and base frequency (100).
        use_vlm_norm: LayerNorm on the projector's student side (True in the released configs).
        teacher: sizes of the frozen VGGT-compatible teacher (ESMConfig.vggt_1b() widths without heads at paper
            scale); never saved. teacher_checkpoint: its local weights ('' = seeded random, tests only).
        teacher_seed: seed of that random teacher.
    """

    enabled: bool = False
    align_layer: int = 12
    teacher_layer: int = -1
    alpha: float = 0.5
    use_pe: bool = True
    pe_scale: float = 0.1
    omega0: float = 100.0
    use_vlm_norm: bool = True
    teacher: ESMConfig = field(default_factory=lambda: ESMConfig.vggt_1b(
        depth_input=False, pose_input=False, camera_head=False, depth_head=False, point_head=False))
    teacher_checkpoint: str = ""
    teacher_seed: int = 0

    def __post_init__(self):
        check_range("alpha", self.alpha, 0.0, 100.0)
        check_range("pe_scale", self.pe_scale, 0.0, 10.0)


@dataclass
class Pi0Lora:
    """LoRA fine-tuning (openpi's gemma_2b_lora / gemma_300m_lora variants; needs peft). Args:
    enabled: adapters on both Gemma stacks, their own weights frozen (see lora_pi0.py).
    paligemma_rank, paligemma_alpha: 16, 16. expert_rank, expert_alpha: 32, 32.
    """

    enabled: bool = False
    paligemma_rank: int = 16
    paligemma_alpha: float = 16.0
    expert_rank: int = 32
    expert_alpha: float = 32.0

    def __post_init__(self):
        check_range("paligemma_rank", self.paligemma_rank, 1, 4096)
        check_range("expert_rank", self.expert_rank, 1, 4096)


@dataclass
class Pi0Config:
    """Args:
    paligemma: the prefix Gemma (gemma_2b). action_expert: the suffix Gemma (gemma_300m); same depth, heads,
        kv heads and head_dim as paligemma (they share every attention layer).
    vision: the SigLIP encoder. vocab_size: PaliGemma's vocabulary (257152).
    action_dim: the model's action and state width (32); a robot's 7 x arms actions and its proprio are
        zero-padded to it.
    max_token_len: prompt tokens (48 for π0). num_steps: Euler denoising steps at inference (10).
    time_beta: Beta(a, b) of the training time t (1.5, 1), scaled to [0.001, 1].
    norm_mode: "mean_std" (π0's z-score) or "q01_q99" (π0.5's quantiles).
    norm_all_dims: z-score every action and state dim as openpi does (True), or follow the stats' mask (vla_ros
        stats computed from bags leave the grippers, already in [0, 1], unnormalised).
    mask_padded_steps: leave the chunk steps past an episode's end (the batch's action_pad) out of the loss
        (a departure: openpi's loss has no mask; False restores it).
    dtype: "float32", or "bfloat16" as openpi runs it (patch/position embeddings and RMSNorms kept in float32).
    tokenizer: "sentencepiece" (PaliGemma's `paligemma_tokenizer.model` or an HF tokenizer.json at
        tokenizer_path, local files only) or "bytes" (UTF-8 bytes + 3, BOS 2; tiny test models only).
    base_weights: a folder in openpi's PyTorch layout (model.safetensors + config.json) whose weights start
        training ('' = random init).
    image_slots: image inputs of the prefix: 3 as openpi's π0 (base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb;
        list camera_names in that order), 0 = one per camera. Slots without a camera are black and masked out, as
        openpi fills a robot's missing cameras.
    augment: openpi's training augmentations (random 95% crop + resize and +-5 deg rotation on non-wrist
        cameras, brightness/contrast/saturation on all); with Spatial Forcing the geometric ones are off, as in
        openpi-SF.
    lora: see Pi0Lora.
    spatial_forcing: see Pi0SpatialForcing.
    """

    paligemma: GemmaWidths = field(default_factory=lambda: GemmaWidths.variant("gemma_2b"))
    action_expert: GemmaWidths = field(default_factory=lambda: GemmaWidths.variant("gemma_300m"))
    vision: SiglipWidths = field(default_factory=SiglipWidths)
    vocab_size: int = 257152
    action_dim: int = 32
    max_token_len: int = 48
    num_steps: int = 10
    time_beta: list[float] = field(default_factory=lambda: [1.5, 1.0])
    norm_mode: Literal["mean_std", "q01_q99"] = "mean_std"
    norm_all_dims: bool = True
    mask_padded_steps: bool = True
    dtype: Literal["float32", "bfloat16"] = "float32"
    tokenizer: Literal["sentencepiece", "bytes"] = "sentencepiece"
    tokenizer_path: str = ""
    base_weights: str = ""
    image_slots: int = 3
    augment: bool = True
    lora: Pi0Lora = field(default_factory=Pi0Lora)
    spatial_forcing: Pi0SpatialForcing = field(default_factory=Pi0SpatialForcing)

    def __post_init__(self):
        p, e = self.paligemma, self.action_expert
        for k in ("depth", "num_heads", "num_kv_heads", "head_dim"):
            check(getattr(p, k) == getattr(e, k), f"action_expert.{k}", getattr(e, k),
                  f"must equal paligemma.{k}={getattr(p, k)} (the two stacks share each attention layer)")
        check_range("action_dim", self.action_dim, 1, 4096)
        check_range("max_token_len", self.max_token_len, 2, 4096)
        check_range("num_steps", self.num_steps, 1, 1000)
        check(len(self.time_beta) == 2 and min(self.time_beta) > 0, "time_beta", self.time_beta,
              "expected two positive numbers")
        check(self.tokenizer != "bytes" or self.vocab_size >= 259, "vocab_size", self.vocab_size,
              "the bytes tokenizer needs >= 259 ids")
        check_range("image_slots", self.image_slots, 0, 16)
        sf = self.spatial_forcing
        check(not sf.enabled or 0 <= sf.align_layer <= p.depth, "spatial_forcing.align_layer", sf.align_layer,
              f"expected 0..{p.depth} (paligemma.depth)")
