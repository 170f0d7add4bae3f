"""Robot adapters by name. `@register("<robot>")` on a RobotAdapter subclass in any module of `vla_ros/adapters/`
adds it; the modules are imported on the first look-up, so a new robot is one new module (plus its YAML)."""
from __future__ import annotations

import importlib
import pkgutil

from vla_ros.core.config import ConfigError

_ADAPTERS: dict[str, type] = {}
_INFRASTRUCTURE = {"base", "config", "registry"}
_discovered = False


def register(name: str):
    """Class decorator: the adapter of robot `name` (the `adapter.robot` YAML value)."""
    def add(cls):
        if name in _ADAPTERS and _ADAPTERS[name] is not cls:
            raise ValueError(f"robot adapter {name!r} registered twice: {_ADAPTERS[name].__name__} and {cls.__name__}")
        cls.name = name
        _ADAPTERS[name] = cls
        return cls
    return add


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import vla_ros.adapters as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _INFRASTRUCTURE and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    _discovered = True


def robot_names() -> list[str]:
    _discover()
    return sorted(_ADAPTERS)


def adapter_class(name: str) -> type:
    """The adapter class of robot `name`; ConfigError naming `robot` for an unknown one."""
    _discover()
    if name not in _ADAPTERS:
        raise ConfigError(f"robot: expected one of {sorted(_ADAPTERS)} (a module in vla_ros/adapters/ "
                          f"registering it), got {name!r}")
    return _ADAPTERS[name]


def make_adapter(cfg):
    """A fresh adapter (its own gripper and IK state) for an AdapterConfig."""
    return adapter_class(cfg.robot)(cfg)
