"""Normalization statistics: an artifact saved beside the weights (norm_stats.json), never recomputed.

Per key ("action", "proprio"): mean, std, q01, q99 over the flattened last dimension, and a mask of the
dims that are normalized (e.g. the gripper stays in [0, 1]). Two modes: "q01_q99" maps [q01, q99] to
[-1, 1] (clipped); "mean_std" standardizes. `normalize` and `unnormalize` mirror each other and accept
numpy arrays or torch tensors (torch is imported only when a tensor is passed).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EPS = 1e-6
MODES = ("q01_q99", "mean_std")
FIELDS = ("mean", "std", "q01", "q99", "mask")


class NormStatsError(ValueError):
    """Norm stats are missing, malformed or do not fit the data; the message names the key (and file)."""


@dataclass(frozen=True)
class KeyStats:
    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray  # True = normalized

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def to_json(self) -> dict:
        return {k: getattr(self, k).tolist() for k in FIELDS}

    @classmethod
    def from_json(cls, d: dict, key: str) -> KeyStats:
        if not isinstance(d, dict):
            raise NormStatsError(f"norm stats '{key}': expected a mapping of {list(FIELDS)}, got {type(d).__name__}")
        try:
            arrays = {k: np.asarray(d[k], dtype=bool if k == "mask" else np.float64) for k in FIELDS}
        except KeyError as exc:
            raise NormStatsError(f"norm stats '{key}': missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise NormStatsError(f"norm stats '{key}': a field is not a list of numbers ({exc})") from None
        dims = {k: v.shape for k, v in arrays.items()}
        if len(set(dims.values())) != 1 or arrays["mean"].ndim != 1:
            raise NormStatsError(f"norm stats '{key}': fields disagree in size {dims}")
        for k in ("mean", "std", "q01", "q99"):
            if not np.isfinite(arrays[k]).all():
                raise NormStatsError(f"norm stats '{key}.{k}': contains NaN/Inf")
        return cls(**arrays)


class NormStats:
    """Per-key statistics plus the default mode; see the module docstring."""

    def __init__(self, stats: dict[str, KeyStats], mode: str = "q01_q99"):
        if mode not in MODES:
            raise NormStatsError(f"mode: {mode!r} is not one of {MODES}")
        self.stats, self.mode = stats, mode

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], mask: dict[str, np.ndarray] | None = None,
                    mode: str = "q01_q99", min_range: dict[str, float] | None = None) -> NormStats:
        """Statistics over all rows of each (..., D) array; `mask[key]` (D,) bool marks normalized dims.
        `min_range[key]`: a dim whose q01..q99 range is narrower is widened (about its middle) to that range, and
        its std floored at half of it, so a near-constant dim's noise is not stretched over [-1, 1]."""
        out = {}
        for key, x in arrays.items():
            x = np.asarray(x, dtype=np.float64)
            if x.ndim == 0 or x.size == 0:
                raise NormStatsError(f"norm stats '{key}': need a non-empty (N, D) array, got shape {x.shape}")
            x = x.reshape(-1, x.shape[-1])
            if not np.isfinite(x).all():
                raise NormStatsError(f"norm stats '{key}': data contains NaN/Inf")
            m = np.ones(x.shape[1], bool) if mask is None or key not in mask else np.asarray(mask[key], bool)
            if m.shape != (x.shape[1],):
                raise NormStatsError(f"norm stats '{key}': mask has shape {m.shape}, data has {x.shape[1]} dims")
            q01, q99, std = np.quantile(x, 0.01, axis=0), np.quantile(x, 0.99, axis=0), x.std(0)
            floor = (min_range or {}).get(key, 0.0)
            if floor > 0:
                mid, half = (q01 + q99) / 2, np.maximum((q99 - q01) / 2, floor / 2)
                q01, q99, std = mid - half, mid + half, np.maximum(std, floor / 2)
            out[key] = KeyStats(x.mean(0), std, q01, q99, m)
        return cls(out, mode)

    def dim(self, key: str) -> int:
        return self._get(key).dim

    def check_dims(self, expected: dict[str, int], source: str = "") -> None:
        """Raise NormStatsError naming the key (and `source`) when a key is missing or has another size."""
        where = f"{source}: " if source else ""
        for key, n in expected.items():
            if key not in self.stats:
                raise NormStatsError(f"{where}norm stats have no key {key!r} (have {sorted(self.stats)})")
            if self.stats[key].dim != n:
                raise NormStatsError(f"{where}norm stats '{key}' have {self.stats[key].dim} dims, expected {n}")

    def _get(self, key: str) -> KeyStats:
        if key not in self.stats:
            raise NormStatsError(f"norm stats have no key {key!r} (have {sorted(self.stats)})")
        return self.stats[key]

    def _check(self, key: str, x, mode: str | None) -> tuple[KeyStats, str]:
        s = self._get(key)
        if x.shape[-1] != s.dim:
            raise NormStatsError(f"norm stats '{key}' have {s.dim} dims but the data has {x.shape[-1]}")
        mode = mode or self.mode
        if mode not in MODES:
            raise NormStatsError(f"mode: {mode!r} is not one of {MODES}")
        return s, mode

    def normalize(self, key: str, x, mode: str | None = None):
        """Raw -> normalized (masked dims pass through). `mode` overrides the stats' default mode."""
        x = _as_float(x)
        s, mode = self._check(key, x, mode)
        if mode == "q01_q99":
            lo, hi = _like(s.q01, x), _like(s.q99, x)
            y = (2.0 * (x - lo) / (hi - lo + EPS) - 1.0).clip(-1.0, 1.0)
        else:
            y = (x - _like(s.mean, x)) / (_like(s.std, x) + EPS)
        return _select(_like(s.mask, x, bool), y, x)

    def unnormalize(self, key: str, y, mode: str | None = None):
        """Normalized -> raw; the inverse of `normalize` inside [q01, q99] (mean_std: everywhere)."""
        y = _as_float(y)
        s, mode = self._check(key, y, mode)
        if mode == "q01_q99":
            lo, hi = _like(s.q01, y), _like(s.q99, y)
            x = (y + 1.0) / 2.0 * (hi - lo + EPS) + lo
        else:
            x = y * (_like(s.std, y) + EPS) + _like(s.mean, y)
        return _select(_like(s.mask, y, bool), x, y)

    def to_json(self) -> dict:
        return {"format": "vla_ros.norm_stats", "version": 1, "mode": self.mode,
                "stats": {k: v.to_json() for k, v in self.stats.items()}}

    @classmethod
    def from_json(cls, d: dict) -> NormStats:
        if not isinstance(d, dict) or "stats" not in d:
            raise NormStatsError("norm stats JSON has no 'stats' field")
        return cls({k: KeyStats.from_json(v, k) for k, v in d["stats"].items()}, d.get("mode", "q01_q99"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: str | Path, expected_dims: dict[str, int] | None = None) -> NormStats:
        """Load a norm_stats.json; with `expected_dims` (key -> size) a missing key or wrong size is named."""
        try:
            stats = cls.from_json(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise NormStatsError(f"{path}: norm stats file not found") from None
        except json.JSONDecodeError as exc:
            raise NormStatsError(f"{path}: not valid JSON ({exc})") from None
        except NormStatsError as exc:
            raise NormStatsError(f"{path}: {exc}") from None
        if expected_dims:
            stats.check_dims(expected_dims, str(path))
        return stats


def _as_float(x):
    if isinstance(x, np.ndarray) or not hasattr(x, "is_floating_point"):
        x = np.asarray(x)
        return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
    return x if x.is_floating_point() else x.float()


def _like(a: np.ndarray, x, dtype=None):
    """A stats vector in x's kind (numpy array or torch tensor), dtype and device."""
    if isinstance(x, np.ndarray):
        return a.astype(dtype or x.dtype)
    import torch

    return torch.as_tensor(a, dtype=torch.bool if dtype is bool else x.dtype, device=x.device)


def _select(mask, a, b):
    """Elementwise: a where mask else b (numpy or torch)."""
    if isinstance(a, np.ndarray):
        return np.where(mask, a, b)
    import torch

    return torch.where(mask, a, b)


ACTION_MIN_RANGE = 0.01  # m and rad: the smallest action/proprio range stretched over [-1, 1]


def action_proprio_stats(actions: np.ndarray, proprio: np.ndarray) -> NormStats:
    """Norm stats of (N, A * 7) actions and (N, D) proprio as every dataset path computes them: grippers (every
    7th action dim) stay in [0, 1]; ranges below ACTION_MIN_RANGE are widened (e.g. the rotation of a tool that
    stays pointing down, whose normalized noise would otherwise dominate the loss)."""
    mask = np.ones(np.asarray(actions).shape[-1], bool)
    mask[6::7] = False
    return NormStats.from_arrays({"action": actions, "proprio": proprio}, {"action": mask},
                                 min_range={"action": ACTION_MIN_RANGE, "proprio": ACTION_MIN_RANGE})
