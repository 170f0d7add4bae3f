"""π0 checkpoints in openpi's PyTorch layout, as `examples/convert_jax_model_to_pytorch.py` writes them:

    <folder>/model.safetensors   `safetensors.torch.save_model(PI0Pytorch)`: keys `paligemma_with_expert.*`,
                                 `state_proj`, `action_in_proj`, `action_out_proj`, `action_time_mlp_{in,out}`
    <folder>/config.json         {action_dim, action_horizon, paligemma_variant, action_expert_variant, precision}
    <folder>/assets/<asset_id>/norm_stats.json   {"norm_stats": {"state"|"actions": {mean, std, q01, q99}}}

Two names differ from this model's own state dict, both by how openpi's file is written: the PaliGemma token
embedding is tied to its lm_head and `save_model` keeps only the alphabetically first name of a tied pair,
`paligemma.lm_head.weight`; and the expert's `gemma_expert.lm_head.weight` (GemmaForCausalLM's output head,
which π0 never uses) is in the file. The first is loaded into the embedding; the second is checked for its shape
and not kept. Every other key must match by name and shape: anything missing, unexpected or mis-shaped is named.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from vla_ros.core.config import ConfigError
from vla_ros.core.normalize import KeyStats, NormStats

WEIGHTS, CONFIG, ASSETS = "model.safetensors", "config.json", "assets"
TIED_FILE_KEY = "paligemma_with_expert.paligemma.lm_head.weight"
EMBED_KEY = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
EXPERT_LM_HEAD = "paligemma_with_expert.gemma_expert.lm_head.weight"
TRAINING_ONLY = ("align_projector.",)  # Spatial Forcing's projector: not in openpi's layout
OPTIONS = ("camera_names", "arm_names", "proprio_dim", "proprio_names", "horizon", "dt_s", "action_reference",
           "rotation_ref_quat_xyzw", "name", "image_size", "asset_id", "dtype", "tokenizer_path", "method_args",
           "require_norm_stats")


class Pi0CheckpointError(RuntimeError):
    """An openpi π0 folder is incomplete or does not match the model; the message names the file and keys."""


def is_released(path: Path) -> bool:
    p = Path(path)
    if not (p.is_dir() and (p / WEIGHTS).is_file() and (p / CONFIG).is_file()) or (p / "config.yaml").exists():
        return False
    try:
        return "paligemma_variant" in json.loads((p / CONFIG).read_text())
    except (OSError, ValueError):
        return False


def read_openpi_config(path: Path) -> dict:
    f = Path(path) / CONFIG
    try:
        cfg = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise Pi0CheckpointError(f"{f}: unreadable ({exc})") from None
    need = ("action_dim", "action_horizon", "paligemma_variant", "action_expert_variant")
    lacking = [k for k in need if k not in cfg]
    if lacking:
        raise Pi0CheckpointError(f"{f}: missing {lacking} (openpi's converter writes {list(need)} + precision)")
    return cfg


def released_layout(policy) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the openpi file this policy corresponds to."""
    out = {}
    for k, v in policy.state_dict().items():
        if k.startswith(TRAINING_ONLY):
            continue
        out[TIED_FILE_KEY if k == EMBED_KEY else k] = tuple(v.shape)
    out[EXPERT_LM_HEAD] = (policy.args.vocab_size, policy.args.action_expert.width)
    return out


def load_openpi_state(policy, state: dict[str, torch.Tensor], where: str = "state dict") -> None:
    """Load openpi-layout tensors into `policy` (see the module docstring); raises naming every mismatch."""
    state = dict(state)
    if TIED_FILE_KEY not in state and EMBED_KEY in state:  # the tied pair saved under the other name
        state[TIED_FILE_KEY] = state.pop(EMBED_KEY)
    expected = released_layout(policy)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {expected[k]}" for k in sorted(set(state) & set(expected))
              if tuple(state[k].shape) != expected[k]]
    if missing or unexpected or shapes:
        raise Pi0CheckpointError(f"{where} does not match the π0 config: {len(missing)} missing {missing[:8]}, "
                                 f"{len(unexpected)} unexpected {unexpected[:8]}, shapes {shapes[:8]}")
    state.pop(EXPERT_LM_HEAD)
    state[EMBED_KEY] = state.pop(TIED_FILE_KEY)
    result = policy.load_state_dict(state, strict=False)
    left = [k for k in result.missing_keys if not k.startswith(TRAINING_ONLY)]
    if left or result.unexpected_keys:
        raise Pi0CheckpointError(f"{where}: not loaded {left[:8]}, unexpected {list(result.unexpected_keys)[:8]}")


def _check_widths(policy, cfg: dict, where: str) -> None:
    from vla_ros.policies.pi0.configuration_pi0 import GemmaWidths

    a = policy.args
    pairs = (("paligemma", cfg["paligemma_variant"]), ("action_expert", cfg["action_expert_variant"]))
    for field, variant in pairs:
        try:
            w = GemmaWidths.variant(variant)
        except ValueError as exc:
            raise Pi0CheckpointError(f"{where}: {exc}") from None
        if w != getattr(a, field):
            raise Pi0CheckpointError(f"{where}: {field} is openpi's {variant!r} {w}, "
                                     f"the config has {getattr(a, field)}")
    if int(cfg["action_dim"]) != a.action_dim:
        raise Pi0CheckpointError(f"{where}: action_dim {cfg['action_dim']}, the config has {a.action_dim}")


def load_openpi_weights(policy, folder: str | Path) -> None:
    """The base weights of a training run (`method_args.base_weights`): the folder's widths must be the config's."""
    from safetensors.torch import load_file

    d = Path(folder)
    if not is_released(d):
        raise Pi0CheckpointError(f"method_args.base_weights: {d} is not an openpi π0 PyTorch folder "
                                 f"({WEIGHTS} + {CONFIG}); nothing is downloaded")
    _check_widths(policy, read_openpi_config(d), str(d / CONFIG))
    load_openpi_state(policy, load_file(str(d / WEIGHTS)), str(d / WEIGHTS))


def read_norm_stats(folder: Path, asset_id: str | None, action_dim: int, proprio_dim: int) -> NormStats | None:
    """assets/<asset_id>/norm_stats.json as openpi stores it -> NormStats ("action" from "actions", "proprio" from
    "state", cut to the robot's dims as openpi's Normalize does; every dim normalised)."""
    root = folder / ASSETS
    found = sorted(p.parent.name for p in root.glob("*/norm_stats.json")) if root.is_dir() else []
    if asset_id is None:
        if len(found) > 1:
            raise Pi0CheckpointError(f"{root}: norm stats for several robots {found}; choose one with "
                                     "policy.load_options.asset_id")
        if not found:
            return None
        asset_id = found[0]
    f = root / asset_id / "norm_stats.json"
    if not f.is_file():
        raise Pi0CheckpointError(f"{f}: missing; assets with norm stats: {found}")
    try:
        raw = json.loads(f.read_text())["norm_stats"]
    except (OSError, ValueError, KeyError) as exc:
        raise Pi0CheckpointError(f"{f}: not openpi norm stats ({exc!r})") from None
    stats = {}
    for ours, theirs, dim in (("action", "actions", action_dim), ("proprio", "state", proprio_dim)):
        if theirs not in raw:
            raise Pi0CheckpointError(f"{f}: no {theirs!r} entry")
        s = raw[theirs]
        fields = {k: np.asarray(s.get(k, s["mean"] if k in ("q01", "q99") else None), np.float64)
                  for k in ("mean", "std", "q01", "q99")}
        if fields["mean"].shape[-1] < dim:
            raise Pi0CheckpointError(f"{f}: {theirs} has {fields['mean'].shape[-1]} dims, the robot needs {dim}")
        stats[ours] = KeyStats(**{k: v[:dim] for k, v in fields.items()}, mask=np.ones(dim, bool))
    return NormStats(stats, "mean_std")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _reset_nonpersistent_buffers(model: torch.nn.Module, device: torch.device) -> None:
    """Buffers not in any state dict (RoPE frequencies, SigLIP position ids), recomputed after a meta build."""
    from transformers.models.gemma.modeling_gemma import GemmaRotaryEmbedding

    pwe = model.paligemma_with_expert
    for gm in (pwe.paligemma.model.language_model, pwe.gemma_expert.model):
        gm.rotary_emb = GemmaRotaryEmbedding(gm.config).to(device)
        emb = gm.embed_tokens
        if emb is not None and hasattr(emb, "embed_scale"):
            emb.embed_scale = torch.tensor(gm.config.hidden_size ** 0.5, device=device)
    e = pwe.paligemma.model.vision_tower.vision_model.embeddings
    e.position_ids = torch.arange(e.num_positions, device=device).expand((1, -1))
    if hasattr(model, "align_projector"):  # training-only, not in the file: a fresh initialisation
        from vla_ros.policies.spatial_model.forcing import AlignProjector

        old = model.align_projector
        model.align_projector = AlignProjector(old.fc1.in_features, old.fc1.out_features // 2,
                                               old.vlm_norm is not None).to(device)
    meta = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if meta:
        raise Pi0CheckpointError(f"tensors left uninitialised after loading: {meta[:8]}")


def load_released(path: Path, device: str, options: dict):
    """An openpi π0 folder -> Pi0Policy. `options` (policy.load_options): the robot's camera_names, arm_names,
    proprio_dim/proprio_names, horizon (default: the folder's action_horizon), dt_s, action_reference, name;
    asset_id (which assets/<id>/norm_stats.json), dtype (default bfloat16 on CUDA, float32 on CPU),
    tokenizer_path, method_args (overrides of Pi0Config), require_norm_stats (default True)."""
    from safetensors.torch import load_file

    from vla_ros.policies.config import PolicyConfig
    from vla_ros.policies.factory import make_policy

    path = Path(path)
    bad = sorted(set(options) - set(OPTIONS))
    if bad:
        raise ConfigError(f"policy.load_options: unknown {bad} for an openpi π0 folder; allowed: {sorted(OPTIONS)}")
    cfg = read_openpi_config(path)
    from vla_ros.policies.pi0.configuration_pi0 import GEMMA_VARIANTS

    def widths(name):
        if name not in GEMMA_VARIANTS:
            raise Pi0CheckpointError(f"{path / CONFIG}: unknown gemma variant {name!r}; known {sorted(GEMMA_VARIANTS)}")
        return dict(zip(("width", "depth", "mlp_dim", "num_heads", "num_kv_heads", "head_dim"), GEMMA_VARIANTS[name]))
    dev = torch.device(device)
    args = {"paligemma": widths(cfg["paligemma_variant"]), "action_expert": widths(cfg["action_expert_variant"]),
            "action_dim": int(cfg["action_dim"]), "dtype": options.get("dtype", "bfloat16" if dev.type == "cuda"
                                                                        else "float32"),
            "tokenizer_path": options.get("tokenizer_path", "")}
    args = _merge(args, options.get("method_args", {}))
    if args.get("lora", {}).get("enabled"):
        raise ConfigError("policy.load_options.method_args.lora: LoRA adapters are added for training; start one "
                          "with method_args.base_weights in a train config (the trained checkpoint holds them)")
    pdata = {"method": "pi0", "name": options.get("name", path.name), "image_size": options.get("image_size", 224),
             "horizon": options.get("horizon", int(cfg["action_horizon"])), "modalities": "rgb", "method_args": args}
    for k in ("camera_names", "arm_names", "proprio_dim", "proprio_names", "dt_s", "action_reference",
              "rotation_ref_quat_xyzw"):
        if k in options:
            pdata[k] = options[k]
    from vla_ros.core.config import from_dict

    pcfg = from_dict(PolicyConfig, pdata, "policy")
    norm = read_norm_stats(path, options.get("asset_id"), pcfg.action_dim, pcfg.proprio_dim)
    if norm is None and options.get("require_norm_stats", True):
        raise Pi0CheckpointError(f"{path / ASSETS}: no <asset_id>/norm_stats.json; a policy needs the stats its "
                                 "actions were normalised with (set load_options.require_norm_stats: false to get "
                                 "normalised actions, e.g. to start fine-tuning)")
    with torch.device("meta"):
        policy = make_policy(pcfg, norm, external_weights=False)
    policy.to_empty(device=dev)
    _check_widths(policy, cfg, str(path / CONFIG))
    try:
        state = load_file(str(path / WEIGHTS))
    except Exception as exc:  # safetensors raises its own error types
        raise Pi0CheckpointError(f"{path / WEIGHTS}: not a readable safetensors file ({exc})") from None
    load_openpi_state(policy, state, str(path / WEIGHTS))
    _reset_nonpersistent_buffers(policy, dev)
    policy.paligemma_with_expert.set_precision(policy.args.dtype)
    return policy.to(dev).eval()
