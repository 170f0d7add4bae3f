"""Find policy classes by method name, build them from a config, save and load self-describing checkpoints.

A method lives in `vla_ros/policies/<method>/modeling_<method>.py` and defines a Policy subclass whose
`method` attribute is its name; adding one touches no central file.
"""
from __future__ import annotations

import copy
import importlib
import pkgutil
from pathlib import Path

from vla_ros.core.config import ConfigError, from_dict
from vla_ros.core.normalize import NormStats
from vla_ros.policies.base import Policy
from vla_ros.policies.config import PolicyConfig


def available_methods() -> list[str]:
    root = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(root)]) if m.ispkg and (root / m.name /
                  f"modeling_{m.name}.py").exists())


def policy_class(method: str) -> type[Policy]:
    if method not in available_methods():
        raise ConfigError(f"method: unknown {method!r}; available: {available_methods()}")
    module = importlib.import_module(f"vla_ros.policies.{method}.modeling_{method}")
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Policy) and getattr(obj, "method", None) == method:
            return obj
    raise ConfigError(f"method: module vla_ros.policies.{method} defines no Policy with method={method!r}")


def make_policy(config: PolicyConfig | dict, norm_stats: NormStats | None = None) -> Policy:
    if isinstance(config, dict):
        config = from_dict(PolicyConfig, config)
    return policy_class(config.method)(config, norm_stats)


def tiny_config(method: str, **overrides) -> PolicyConfig:
    """A few-M-parameter config of `method` that trains on a CPU (tests, the demo, quick checks)."""
    cls = policy_class(method)
    data = {"method": method, "name": f"tiny_{method}", "method_args": copy.deepcopy(getattr(cls, "TINY_ARGS", {}))}
    data.update(overrides)
    return from_dict(PolicyConfig, data)


def save_checkpoint(policy: Policy, directory: str | Path, extra: dict | None = None) -> Path:
    from vla_ros.training.checkpoint import save_checkpoint as _save

    return _save(policy, directory, extra)


def load_policy(directory: str | Path, device: str = "cpu") -> Policy:
    from vla_ros.training.checkpoint import load_checkpoint

    return load_checkpoint(directory, device)
