"""Self-describing checkpoints: model.safetensors + config.yaml + norm_stats.json (+ tokenizer.json).

Loading rebuilds the model from the folder alone and checks that the pieces agree: every missing or
unexpected weight, a shape mismatch, norm stats of the wrong size, or a tokenizer that does not fit is
named. Nothing is ever fetched from a hub.
"""
from __future__ import annotations

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


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing a file or its parts do not match; the message names what and where."""


def save_checkpoint(policy: Policy, directory: str | Path, extra: dict | None = None) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    save_file(state, str(d / CKPT_WEIGHTS), metadata={"method": policy.method, "format": "vla_ros/1"})
    cfg = to_dict(policy.config)
    (d / CKPT_CONFIG).write_text(yaml.safe_dump({"policy": cfg, **(extra or {})}, sort_keys=False))
    if policy.norm_stats is not None:
        policy.norm_stats.save(d / CKPT_NORM_STATS)
    grid = getattr(policy, "grid", None)
    if grid is not None:
        grid.save(d / CKPT_TOKENIZER)
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
    try:
        return from_dict(PolicyConfig, data.get("policy"))
    except ConfigError as exc:
        raise CheckpointError(f"{d / CKPT_CONFIG}: policy.{exc}") from None


def load_checkpoint(directory: str | Path, device: str = "cpu") -> Policy:
    from vla_ros.policies.factory import make_policy

    d = Path(directory)
    cfg = read_config(d)
    norm = None
    if (d / CKPT_NORM_STATS).exists():
        try:
            norm = NormStats.load(d / CKPT_NORM_STATS)
            if norm.dim("action") != cfg.action_dim:
                raise CheckpointError(f"{d / CKPT_NORM_STATS}: 'action' has {norm.dim('action')} dims but the config "
                                      f"has {len(cfg.arm_names)} arm(s) x 7 = {cfg.action_dim}")
            if "proprio" in norm.stats and norm.dim("proprio") != cfg.proprio_dim:
                raise CheckpointError(f"{d / CKPT_NORM_STATS}: 'proprio' has {norm.dim('proprio')} dims but "
                                      f"config.proprio_dim = {cfg.proprio_dim}")
        except NormStatsError as exc:
            raise CheckpointError(f"{d / CKPT_NORM_STATS}: {exc}") from None
    policy = make_policy(cfg, norm)
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
        raise CheckpointError(f"{d / CKPT_WEIGHTS} does not match {cfg.method} config: missing {missing[:8]}"
                              f"{'...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}, shapes {shapes[:8]}")
    policy.load_state_dict(state)
    if (d / CKPT_TOKENIZER).exists() and hasattr(policy, "grid"):
        from vla_ros.policies.spatialvla.action_grid import ActionGrid

        grid = ActionGrid.load(d / CKPT_TOKENIZER)
        if grid.vocab_size != policy.grid.vocab_size:
            raise CheckpointError(f"{d / CKPT_TOKENIZER}: {grid.vocab_size} tokens but the model has "
                                  f"{policy.grid.vocab_size}")
        policy.grid = grid
    return policy.to(torch.device(device)).eval()
