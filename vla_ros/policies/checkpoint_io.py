"""Self-describing checkpoints: model.safetensors + config.yaml + norm_stats.json (+ tokenizer.json), and
`load_policy`, which also takes a released checkpoint in its reference layout (through the method's loader).

Loading rebuilds the model from the folder alone and checks that the pieces agree: a missing file, every
missing or unexpected weight, a shape mismatch, norm stats of the wrong size, or a tokenizer that is absent
or cut differently from the config is named. Nothing is ever fetched from a hub. Spatial Forcing's teacher is
never part of the state dict, so no checkpoint holds teacher weights.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vla_ros.core.config import ConfigError, from_dict, to_dict
from vla_ros.core.constants import CKPT_CONFIG, CKPT_NORM_STATS, CKPT_TOKENIZER, CKPT_WEIGHTS
from vla_ros.core.normalize import NormStats, NormStatsError
from vla_ros.policies.base import Policy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import make_policy, released_loader

FORMAT = "vla_ros/1"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing a file or its parts do not match; the message names what and where."""


def _replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def save_checkpoint(policy: Policy, directory: str | Path, extra: dict | None = None) -> Path:
    """Write the folder; each file is written under a temporary name and renamed, so a reader (or a crash
    mid-save) never sees a half-written file."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state, seen = {}, set()
    for k, v in policy.state_dict().items():  # tied weights (e.g. Kosmos-2's lm_head) are stored once per key
        v = v.detach().cpu().contiguous()
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        state[k] = v.clone() if ptr in seen else v
        seen.add(ptr)
    teacher = [k for k in state if "teacher" in k.split(".")[0]]
    if teacher:
        raise CheckpointError(f"refusing to save teacher weights {teacher[:4]}: the teacher is training-only")
    save_file(state, str(d / (CKPT_WEIGHTS + ".tmp")), metadata={"method": policy.method, "format": FORMAT})
    _replace(d / (CKPT_WEIGHTS + ".tmp"), d / CKPT_WEIGHTS)
    (d / (CKPT_CONFIG + ".tmp")).write_text(yaml.safe_dump({"format": FORMAT, "policy": to_dict(policy.config),
                                                            **(extra or {})}, sort_keys=False))
    _replace(d / (CKPT_CONFIG + ".tmp"), d / CKPT_CONFIG)
    if policy.norm_stats is not None:
        policy.norm_stats.save(d / (CKPT_NORM_STATS + ".tmp"))
        _replace(d / (CKPT_NORM_STATS + ".tmp"), d / CKPT_NORM_STATS)
    grid = getattr(policy, "grid", None)
    if grid is not None:
        grid.save(d / (CKPT_TOKENIZER + ".tmp"))
        _replace(d / (CKPT_TOKENIZER + ".tmp"), d / CKPT_TOKENIZER)
    return d


def read_config(directory: str | Path) -> PolicyConfig:
    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"{d}: checkpoint folder not found")
    try:
        data = yaml.safe_load((d / CKPT_CONFIG).read_text()) or {}
    except FileNotFoundError:
        raise CheckpointError(f"{d / CKPT_CONFIG}: missing (a checkpoint needs {CKPT_WEIGHTS} and {CKPT_CONFIG})") \
            from None
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{d / CKPT_CONFIG}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or "policy" not in data:
        raise CheckpointError(f"{d / CKPT_CONFIG}: no 'policy' section")
    try:
        return from_dict(PolicyConfig, data["policy"])
    except ConfigError as exc:
        raise CheckpointError(f"{d / CKPT_CONFIG}: policy.{exc}") from None


def read_norm_stats(directory: str | Path, cfg: PolicyConfig) -> NormStats | None:
    """The folder's norm stats (None if absent), checked against the config's action and proprio sizes."""
    path = Path(directory) / CKPT_NORM_STATS
    if not path.exists():
        return None
    try:
        norm = NormStats.load(path, {"action": cfg.action_dim})
        if "proprio" in norm.stats:
            norm.check_dims({"proprio": cfg.proprio_dim}, str(path))
    except NormStatsError as exc:
        raise CheckpointError(f"{exc} (config: {len(cfg.arm_names)} arm(s) x 7 = {cfg.action_dim} action dims, "
                              f"proprio_dim {cfg.proprio_dim})") from None
    return norm


def load_checkpoint(directory: str | Path, device: str = "cpu") -> Policy:
    """A vla_ros checkpoint folder -> its policy on `device` (eval mode); every mismatch is a CheckpointError."""
    d = Path(directory)
    cfg = read_config(d)
    policy = make_policy(cfg, read_norm_stats(d, cfg), external_weights=False)
    try:
        state = load_file(str(d / CKPT_WEIGHTS))
    except FileNotFoundError:
        raise CheckpointError(f"{d / CKPT_WEIGHTS}: missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{d / CKPT_WEIGHTS}: corrupt or not a safetensors file ({exc})") from None
    own = policy.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        raise CheckpointError(f"{d / CKPT_WEIGHTS} does not match the {cfg.method} config in {d / CKPT_CONFIG}: "
                              f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
                              f"{'...' if len(unexpected) > 8 else ''}, shapes {shapes[:8]}")
    policy.load_state_dict(state)
    _check_tokenizer(d, policy)
    return policy.to(torch.device(device)).eval()


def _check_tokenizer(d: Path, policy: Policy) -> None:
    grid = getattr(policy, "grid", None)
    path = d / CKPT_TOKENIZER
    if grid is None:
        if path.exists():
            raise CheckpointError(f"{path}: the {policy.method} policy uses no tokenizer; is this the right folder?")
        return
    if not path.exists():
        raise CheckpointError(f"{path}: missing; the {policy.method} policy needs its action tokenizer")
    from vla_ros.policies.tokenizers.action_grid import ActionGrid, TokenizerError

    try:
        saved = ActionGrid.load(path)
    except TokenizerError as exc:
        raise CheckpointError(str(exc)) from None
    diff = grid.mismatch(saved)
    if diff:
        raise CheckpointError(f"{path} does not match method_args.grid in {d / CKPT_CONFIG}: {diff}")


def load_policy(directory: str | Path, device: str = "cpu", options: dict | None = None) -> Policy:
    """Rebuild a policy from a checkpoint folder alone (weights, config, norm stats, tokenizer), or from a
    released checkpoint in its reference layout. `options` are the released loader's (e.g. `unnorm_key`,
    `dtype`); a vla_ros checkpoint takes none."""
    loader = released_loader(directory)
    if loader is not None:
        return loader.load_released(Path(directory), device, dict(options or {}))
    if options:
        raise ConfigError(f"policy.load_options: {sorted(options)} apply to released checkpoints only; "
                          f"{directory} is a vla_ros checkpoint folder")
    return load_checkpoint(directory, device)
