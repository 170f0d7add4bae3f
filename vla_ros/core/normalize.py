"""Normalization statistics: an artifact saved beside the weights (norm_stats.json), never recomputed.

Per key ("action", "proprio"): mean, std, q01, q99 over the flattened last dimension, and a mask of the
dims that are normalized (e.g. the gripper stays in [0, 1]). Two modes: "q01_q99" maps [q01, q99] to
[-1, 1] (clipped); "mean_std" standardizes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EPS = 1e-6


class NormStatsError(ValueError):
    pass


@dataclass
class KeyStats:
    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray  # True = normalized

    def to_json(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("mean", "std", "q01", "q99", "mask")}

    @classmethod
    def from_json(cls, d: dict, key: str) -> KeyStats:
        try:
            arrays = {k: np.asarray(d[k], dtype=bool if k == "mask" else np.float64)
                      for k in ("mean", "std", "q01", "q99", "mask")}
        except KeyError as exc:
            raise NormStatsError(f"norm stats '{key}': missing field {exc.args[0]!r}") from None
        dims = {k: v.shape for k, v in arrays.items()}
        if len(set(dims.values())) != 1:
            raise NormStatsError(f"norm stats '{key}': fields disagree in size {dims}")
        return cls(**arrays)


class NormStats:
    def __init__(self, stats: dict[str, KeyStats], mode: str = "q01_q99"):
        if mode not in ("q01_q99", "mean_std"):
            raise NormStatsError(f"mode: {mode!r} is not q01_q99 or mean_std")
        self.stats, self.mode = stats, mode

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], mask: dict[str, np.ndarray] | None = None,
                    mode: str = "q01_q99") -> NormStats:
        out = {}
        for key, x in arrays.items():
            x = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
            if not np.isfinite(x).all():
                raise NormStatsError(f"norm stats '{key}': data contains NaN/Inf")
            m = np.ones(x.shape[1], bool) if mask is None or key not in mask else np.asarray(mask[key], bool)
            out[key] = KeyStats(x.mean(0), x.std(0), np.quantile(x, 0.01, axis=0), np.quantile(x, 0.99, axis=0), m)
        return cls(out, mode)

    def dim(self, key: str) -> int:
        return int(self._get(key).mean.shape[0])

    def _get(self, key: str) -> KeyStats:
        if key not in self.stats:
            raise NormStatsError(f"norm stats have no key {key!r} (have {sorted(self.stats)})")
        return self.stats[key]

    def _check(self, key: str, x) -> KeyStats:
        s = self._get(key)
        if x.shape[-1] != s.mean.shape[0]:
            raise NormStatsError(f"norm stats '{key}' have {s.mean.shape[0]} dims but the data has {x.shape[-1]}")
        return s

    def normalize(self, key: str, x):
        s = self._check(key, x)
        if self.mode == "q01_q99":
            lo, hi = _like(s.q01, x), _like(s.q99, x)
            y = 2.0 * (x - lo) / (hi - lo + EPS) - 1.0
            y = y.clip(-1.0, 1.0)
        else:
            y = (x - _like(s.mean, x)) / (_like(s.std, x) + EPS)
        m = _like(s.mask, x, bool)
        return y * m + x * ~m if not hasattr(x, "where") else x.where(~m, y)

    def unnormalize(self, key: str, y):
        s = self._check(key, y)
        if self.mode == "q01_q99":
            lo, hi = _like(s.q01, y), _like(s.q99, y)
            x = (y + 1.0) / 2.0 * (hi - lo + EPS) + lo
        else:
            x = y * (_like(s.std, y) + EPS) + _like(s.mean, y)
        m = _like(s.mask, y, bool)
        return x * m + y * ~m if not hasattr(y, "where") else y.where(~m, x)

    def to_json(self) -> dict:
        return {"mode": self.mode, "stats": {k: v.to_json() for k, v in self.stats.items()}}

    @classmethod
    def from_json(cls, d: dict) -> NormStats:
        if "stats" not in d:
            raise NormStatsError("norm stats JSON has no 'stats' field")
        return cls({k: KeyStats.from_json(v, k) for k, v in d["stats"].items()}, d.get("mode", "q01_q99"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise NormStatsError(f"{path}: norm stats file not found") from None
        except json.JSONDecodeError as exc:
            raise NormStatsError(f"{path}: not valid JSON ({exc})") from None


def _like(a: np.ndarray, x, dtype=None):
    """Broadcast a stats vector to x's type (numpy array or torch tensor)."""
    if isinstance(x, np.ndarray):
        return a.astype(dtype or x.dtype)
    import torch

    return torch.as_tensor(a, dtype=torch.bool if dtype is bool else x.dtype, device=x.device)
