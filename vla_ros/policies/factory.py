"""Find policy classes by method name and build them from a config (checkpoint I/O: checkpoint_io.py).

A method lives in `vla_ros/policies/<method>/modeling_<method>.py` and registers its Policy subclass with
`@register_policy` (its `method` attribute is the name). The module is imported on first use, so adding a
method touches no central file; code outside the package can register a class the same way.
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

_REGISTRY: dict[str, type[Policy]] = {}


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make `cls` available as `cls.method`."""
    name = getattr(cls, "method", "")
    if not name or name == "base":
        raise ConfigError(f"{cls.__name__}: set a `method` name before registering")
    other = _REGISTRY.get(name)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ConfigError(f"method {name!r} is registered twice ({other.__qualname__} and {cls.__qualname__})")
    _REGISTRY[name] = cls
    return cls


def _method_folders() -> list[str]:
    root = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(root)])
                  if m.ispkg and (root / m.name / f"modeling_{m.name}.py").exists())


def available_methods() -> list[str]:
    return sorted(set(_method_folders()) | set(_REGISTRY))


def policy_class(method: str) -> type[Policy]:
    if method not in _REGISTRY and method in _method_folders():
        importlib.import_module(f"vla_ros.policies.{method}.modeling_{method}")
    if method not in _REGISTRY:
        raise ConfigError(f"method: unknown {method!r}; available: {available_methods()}")
    return _REGISTRY[method]


def make_policy(config: PolicyConfig | dict, norm_stats: NormStats | None = None,
                external_weights: bool = True) -> Policy:
    """Build the policy of `config.method`; `external_weights=False` skips reading the local weight files the
    config names (a checkpoint's model.safetensors provides them)."""
    if isinstance(config, dict):
        config = from_dict(PolicyConfig, config)
    return policy_class(config.method)(config, norm_stats, external_weights)


def tiny_config(method: str, **overrides) -> PolicyConfig:
    """A few-M-parameter config of `method` that trains on a CPU (tests, the demo, quick checks)."""
    cls = policy_class(method)
    data = {"method": method, "name": f"tiny_{method}", "method_args": copy.deepcopy(cls.TINY_ARGS),
            **copy.deepcopy(getattr(cls, "TINY_POLICY", {}))}  # PolicyConfig fields the tiny model needs
    data.update(overrides)
    return from_dict(PolicyConfig, data)


def released_loader(path: str | Path):
    """The `loading_<method>` module that recognises `path` as a released checkpoint in its reference layout
    (e.g. an HF SpatialVLA folder, a FALCON Lightning .ckpt), or None for a vla_ros checkpoint folder.

    A method folder opts in with `loading_<method>.py` defining `is_released(path) -> bool` and
    `load_released(path, device, options: dict) -> Policy`; nothing central names the methods."""
    root = Path(__file__).parent
    for name in _method_folders():
        if (root / name / f"loading_{name}.py").exists():
            mod = importlib.import_module(f"vla_ros.policies.{name}.loading_{name}")
            if mod.is_released(Path(path)):
                return mod
    return None
