"""What a checkpoint folder holds, for `vla-ros checkpoint inspect`: method, parameter count, key coverage against
the layout the method expects, available normalisation keys, and the checkpoint card. Generic: a released layout's
loader module may define `inspect_released(path, card) -> CheckpointReport`; a vla_ros checkpoint folder is
compared with its config's model built on the meta device."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vla_ros.policies.cards import Card


@dataclass
class CheckpointReport:
    """Args:
    path, method, layout ("released" or "vla_ros").
    n_params, n_tensors: in the files. expected: tensors the method's layout expects.
    missing, unexpected, shape_mismatch: key names (against the expected layout).
    norm_keys: normalisation statistics keys available (dataset keys / norm_stats entries).
    card: the checkpoint card, when one matches.
    """

    path: str
    method: str
    layout: str
    n_params: int
    n_tensors: int
    expected: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    norm_keys: list[str] = field(default_factory=list)
    card: Card | None = None

    @property
    def coverage(self) -> float:
        return (self.expected - len(self.missing)) / max(self.expected, 1)


def compare(found: dict[str, tuple], expected: dict[str, tuple]) -> tuple[list[str], list[str], list[str]]:
    """Key-shape dicts -> (missing, unexpected, shape mismatches)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [f"{k}: file {found[k]} vs layout {expected[k]}" for k in sorted(set(found) & set(expected))
              if tuple(found[k]) != tuple(expected[k])]
    return missing, unexpected, shapes


def _vla_ros_report(path: Path) -> CheckpointReport:
    import torch
    from safetensors import safe_open

    from vla_ros.core.constants import CKPT_WEIGHTS
    from vla_ros.policies.checkpoint_io import read_config, read_norm_stats
    from vla_ros.policies.factory import make_policy

    cfg = read_config(path)
    stats = read_norm_stats(path, cfg)
    with safe_open(str(path / CKPT_WEIGHTS), framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    with torch.device("meta"):
        model = make_policy(cfg, stats, external_weights=False)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected, shapes = compare(found, expected)
    n = sum(int(torch.Size(s).numel()) for s in found.values())
    own = cfg.method_args.get("statistics")  # a method that un-normalises with its own statistics (SpatialVLA)
    keys = sorted(own) if isinstance(own, dict) and own else sorted(stats.stats) if stats is not None else []
    return CheckpointReport(str(path), cfg.method, "vla_ros", n, len(found), len(expected), missing, unexpected, shapes,
                            keys)


def inspect_checkpoint(path: str | Path, card: str = "", options: dict | None = None) -> CheckpointReport:
    """`options`: the released loader's load options (e.g. FALCON's `esm` and `kosmos2` folders)."""
    from vla_ros.policies.factory import released_loader

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such checkpoint")
    loader = released_loader(p)
    if loader is not None:
        return loader.inspect_released(p, card, options)
    return _vla_ros_report(p)


def format_report(r: CheckpointReport, max_names: int = 10) -> str:
    def names(xs: list[str]) -> str:
        return ", ".join(xs[:max_names]) + (f", ... ({len(xs)} in all)" if len(xs) > max_names else "")

    lines = [f"checkpoint: {r.path}", f"method: {r.method} ({r.layout} layout)",
             f"parameters: {r.n_params:,} in {r.n_tensors} tensors",
             f"key coverage: {r.expected - len(r.missing)}/{r.expected} expected keys ({100 * r.coverage:.1f} %), "
             f"{len(r.unexpected)} unexpected, {len(r.shape_mismatch)} shape mismatches"]
    for title, xs in (("missing", r.missing), ("unexpected", r.unexpected), ("shape mismatches", r.shape_mismatch)):
        if xs:
            lines.append(f"  {title}: {names(xs)}")
    lines.append(f"norm keys: {', '.join(r.norm_keys) if r.norm_keys else '(none)'}")
    lines.append("card: (none matches; pass --card NAME)" if r.card is None else f"card: {r.card.name} ({r.card.path})")
    if r.card is not None:
        lines += ["  " + line for line in r.card.to_text().splitlines()]
    return "\n".join(lines)
