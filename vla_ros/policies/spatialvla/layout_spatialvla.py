"""Key names of the released checkpoint <-> this process's module names.

The released weights were saved by transformers 4.47 (SigLIP under `vision_model.`, BEiT's `encoder.layer.N.
attention.attention.query`, ...); transformers 5 renamed some modules and ships the renamings
(`conversion_mapping`). The released name of a sub-model key is transformers' own reverse renaming; loading applies
the forward one. The reference's own modules (projector, Ego3D MLP, spatial embeddings) are not renamed.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.conversion_mapping import get_model_conversion_mapping
from transformers.core_model_loading import WeightConverter

SUBMODELS = ("vision_tower", "language_model", "vision_zoe_model")


def _transforms(sub: nn.Module) -> list:
    conv = get_model_conversion_mapping(sub, add_legacy=False)
    bad = [c for c in conv if isinstance(c, WeightConverter)]
    if bad:  # only pure renamings keep the tensors as they are
        raise RuntimeError(f"{type(sub).__name__}: this transformers version converts (not only renames) the released "
                           f"weights ({bad}); the loader maps names only: use the pinned transformers version")
    return conv


def _apply(transforms: list, key: str) -> str:
    for t in transforms:
        key, _ = t.rename_source_key(key)
    return key


def submodel_released_names(sub: nn.Module, keys) -> dict[str, str]:
    """{module key: released key} for one transformers sub-model (keys without the sub-model prefix)."""
    rev = [t.reverse_transform() for t in _transforms(sub)[::-1]]
    return {k: _apply(rev, k) for k in keys}


def released_names(policy: nn.Module) -> dict[str, str]:
    """{module state-dict key: released key} for the whole SpatialVLA policy."""
    out = {}
    keys = list(policy.state_dict().keys())
    for name in SUBMODELS:
        sub = getattr(policy, name, None)
        if sub is None:
            continue
        own = [k[len(name) + 1:] for k in keys if k.startswith(name + ".")]
        out.update({f"{name}.{k}": f"{name}.{v}" for k, v in submodel_released_names(sub, own).items()})
    out.update({k: k for k in keys if k not in out})
    return out


def released_state_dict(policy: nn.Module) -> dict[str, torch.Tensor]:
    """The policy's weights under the released key names (what a released safetensors folder holds)."""
    names = released_names(policy)
    return {names[k]: v for k, v in policy.state_dict().items()}
