"""LoRA fine-tuning of π0 as openpi's `gemma_2b_lora` + `gemma_300m_lora` variants do it, through `peft`:
adapters on every attention (q, k, v, o) and MLP (gate, up, down) projection of both Gemma stacks (rank 16 /
alpha 16 on PaliGemma's, rank 32 / alpha 32 on the expert's), both factors initialised N(0, 0.01) as openpi's
`LoRAConfig.init_fn`; the Gemma stacks' own weights (embedding included) are frozen, while the SigLIP encoder, the
projector and the state/action/time projections stay trainable (openpi `Pi0Config.get_freeze_filter`)."""
from __future__ import annotations

from torch import nn

from vla_ros.policies.pi0.processing_pi0 import Pi0InputError

STACKS = r"(paligemma\.model\.language_model|gemma_expert\.model)"
TARGETS = STACKS + r"\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
EXPERT = r"gemma_expert\.model\.layers\.\d+\.\w+\.\w+"
FROZEN = ("paligemma_with_expert.paligemma.model.language_model.", "paligemma_with_expert.gemma_expert.model.")


def apply_lora(policy: nn.Module, cfg) -> None:
    """Inject the adapters into `policy.paligemma_with_expert` and freeze as openpi does. `cfg`: Pi0Lora."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise Pi0InputError("method_args.lora.enabled needs the peft package (pip install .[pi0]; pinned in "
                            "requirements/constraints.txt)") from None
    lc = LoraConfig(r=cfg.paligemma_rank, lora_alpha=cfg.paligemma_alpha, target_modules=TARGETS, lora_dropout=0.0,
                    bias="none", rank_pattern={EXPERT: cfg.expert_rank}, alpha_pattern={EXPERT: cfg.expert_alpha})
    inject_adapter_in_model(lc, policy.paligemma_with_expert)  # (peft freezes everything else of that module)
    for name, p in policy.named_parameters():
        if "lora_" in name:
            nn.init.normal_(p, std=0.01)
        p.requires_grad_("lora_" in name or not name.startswith(FROZEN))
