"""Typed dataclass configs with YAML as their saved form.

`from_dict(Cls, data)` builds a (possibly nested) dataclass from plain data and rejects unknown keys,
wrong types and out-of-range values with the dotted key named, e.g.
`ConfigError: executor.limits.max_step_m: expected float, got str ('fast')`.
`override(cfg, changes)` is a copy of a config with some (possibly nested) fields changed, checked the same way.
Configs validate themselves in `__post_init__` through `check(...)`; they never probe hardware. A field made with
`bounded(default, lo, hi)` carries its range: `check_bounds(self)` validates it and `field_infos` describes it
(unit from the name's suffix, range, closed set), e.g. for the executor node's read-only ROS parameters.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key is unknown, of the wrong type, or out of range. The message names the key."""


def check(ok: bool, key: str, value: Any, expected: str) -> None:
    """Raise ConfigError naming `key` unless `ok` (use from __post_init__)."""
    if not ok:
        raise ConfigError(f"{key}: {expected}, got {value!r}")


def check_range(key: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    lo_ok = lo is None or value >= lo
    hi_ok = hi is None or value <= hi
    bounds = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
    check(lo_ok and hi_ok, key, value, f"must be in {bounds}")


def bounded(default: Any = dataclasses.MISSING, lo: float | None = None, hi: float | None = None, *,
            default_factory: Any = dataclasses.MISSING, unit: str = "") -> Any:
    """A dataclass field whose value must lie in [lo, hi] (checked by `check_bounds`); `unit` overrides the one
    read from the name's suffix."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"range": (lo, hi), "unit": unit})


def check_bounds(obj: Any) -> None:
    """ConfigError naming the first field of `obj` made with `bounded` whose value is out of its range."""
    for f in dataclasses.fields(obj):
        lo, hi = f.metadata.get("range", (None, None))
        if lo is not None or hi is not None:
            check_range(f.name, getattr(obj, f.name), lo, hi)


UNIT_SUFFIXES = (("_m_s", "m/s"), ("_rad_s", "rad/s"), ("_hz", "Hz"), ("_m", "m"), ("_s", "s"), ("_rad", "rad"),
                 ("_n", "N"), ("_deg", "deg"))


def unit_of(name: str) -> str:
    """The unit a config key names by its suffix (`max_speed_m_s` -> m/s), "" when it names none."""
    return next((unit for suffix, unit in UNIT_SUFFIXES if name.endswith(suffix)), "")


@dataclasses.dataclass
class FieldInfo:
    """One leaf of a config: dotted name, value, type hint and a description with its unit, range or choices."""

    name: str
    value: Any
    type: Any
    description: str
    lo: float | None = None
    hi: float | None = None


def field_infos(obj: Any, prefix: str = "") -> list[FieldInfo]:
    """Every leaf field of dataclass `obj` (nested dataclasses flattened into dotted names)."""
    hints = typing.get_type_hints(type(obj))
    out = []
    for f in dataclasses.fields(obj):
        name, value = f"{prefix}.{f.name}" if prefix else f.name, getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(field_infos(value, name))
            continue
        lo, hi = f.metadata.get("range", (None, None))
        parts = [f.metadata.get("unit") or unit_of(f.name) or "no unit"]
        if lo is not None or hi is not None:
            parts.append(f"range [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]")
        if typing.get_origin(hints[f.name]) is typing.Literal:
            parts.append(f"one of {list(typing.get_args(hints[f.name]))}")
        out.append(FieldInfo(name, value, hints[f.name], "; ".join(parts), lo, hi))
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        check(value in args, key, value, f"expected one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        what = _type_name(args[0]) if args else "items"
        check(isinstance(value, (list, tuple)), key, value, f"expected a list of {what}")
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        check(isinstance(value, dict), key, value, "expected a mapping")
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _coerce(val_tp, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        check(isinstance(value, bool), key, value, "expected true or false")
        return value
    if tp is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool), key, value, "expected float")
        return float(value)
    if tp is int:
        check(isinstance(value, int) and not isinstance(value, bool), key, value, "expected int")
        return value
    if tp is str:
        check(isinstance(value, str), key, value, "expected str")
        return value
    return value


def from_dict(cls: type[T], data: Any, key: str = "") -> T:
    """Build dataclass `cls` from a mapping; unknown keys and bad values raise ConfigError naming the key."""
    where = key or cls.__name__
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    kwargs = {name: _coerce(hint, value, dotted) for name, value, dotted, hint in _known_items(cls, data, key)}
    return _build(cls, kwargs, key)


def _known_items(cls: type, data: dict, key: str):
    """(name, value, dotted key, type hint) of each entry of `data`; an unknown name raises ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = _init_fields(cls)
    for name, value in data.items():
        dotted = f"{key}.{name}" if key else str(name)
        _check_known(cls, fields, name, dotted)
        yield name, value, dotted, hints[name]


def _init_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _check_known(cls: type, fields: list[str], name: Any, dotted: str) -> None:
    if name not in fields:
        close = difflib.get_close_matches(str(name), fields, n=1)
        moved = getattr(cls, "MOVED_KEYS", {}).get(name)  # a key an earlier YAML layout had here
        prefix = dotted[: len(dotted) - len(str(name))]
        hint = f" (moved to {prefix}{moved})" if moved else f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{dotted}: unknown key for {cls.__name__}{hint}; allowed: {sorted(fields)}")


def _build(make, kwargs: dict, key: str):
    """`make(**kwargs)` (a class, or dataclasses.replace bound to an instance); a ConfigError from
    `__post_init__` gets `key` in front."""
    try:
        return make(**kwargs)
    except ConfigError as exc:
        if key and not str(exc).startswith(key):
            raise ConfigError(f"{key}.{exc}") from None
        raise


def override(obj: T, changes: dict, key: str = "") -> T:
    """A copy of config `obj` with `changes` applied: {field: value}, where a mapping given for a nested config
    changes only the fields it names. Values are checked as from_dict checks them and every changed config's
    `__post_init__` runs again (dataclasses.replace), so a bad key or value raises ConfigError naming the dotted
    key (`key` is the prefix). The copy shares nothing with `obj`."""
    return copy.deepcopy(_override(obj, changes, key))


def _override(obj: T, changes: dict, key: str) -> T:
    cls = type(obj)
    where = key or cls.__name__
    if not isinstance(changes, dict):
        raise ConfigError(f"{where}: expected a mapping of changes for {cls.__name__}, got {changes!r}")
    for trigger, dependents in getattr(cls, "OVERRIDE_RESETS", {}).items():
        if trigger in changes and changes[trigger] != getattr(obj, trigger):  # e.g. another robot: new settings
            kept = {k: v for k, v in to_dict(obj).items() if k not in dependents}
            return from_dict(cls, {**kept, **changes}, key)
    kwargs = {}
    for name, value, dotted, hint in _known_items(cls, changes, key):
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            kwargs[name] = _override(current, value, dotted)
        else:
            kwargs[name] = _coerce(hint, value, dotted)
    return _build(lambda **kw: dataclasses.replace(obj, **kw), kwargs, key)


def to_dict(obj: Any) -> Any:
    """Plain-data form of a config (tuples become lists) for YAML and checkpoints."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def load_yaml(cls: type[T], path: str | Path, section: str | None = None) -> T:
    """Load `cls` from a YAML file (optionally one top-level section of it); errors name file and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise ConfigError(f"{path}: missing top-level section {section!r}")
        data = data[section]
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

