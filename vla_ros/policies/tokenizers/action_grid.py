"""Adaptive Action Grids (SpatialVLA): 3 tokens per arm step over Gaussian equal-probability bins.

Actions arrive normalized to [-1, 1] per dim (q01/q99). Translation (x, y, z) becomes spherical
(theta in [0, pi], phi in [-pi, pi], r in [0, sqrt(3)]); rotation keeps its 3 normalized dims; the
gripper gets 2 bins. Per variable a Gaussian is fitted (sigma clamped from below) and bin edges are cut at
equal probability between the variable's range limits; without a fit the bins are uniform. Tokens:
translation theta*phi*r (16*32*8 = 4096), rotation 16^3 = 4096, gripper 2 -> 8194. Decoding uses bin
midpoints. `adapt` re-cuts the grid for a new robot and initialises the new token embeddings by
interpolating the old ones over bin centres.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import norm

RANGES = {"theta": (0.0, np.pi), "phi": (-np.pi, np.pi), "r": (0.0, np.sqrt(3.0)),
          "roll": (-1.0, 1.0), "pitch": (-1.0, 1.0), "yaw": (-1.0, 1.0)}
TRANSLATION = ("theta", "phi", "r")
ROTATION = ("roll", "pitch", "yaw")


class TokenizerError(ValueError):
    """A tokenizer file is missing or does not fit the model; the message names the file and the field."""


@dataclass
class GridSpec:
    bins: dict[str, int] = field(default_factory=lambda: {"theta": 16, "phi": 32, "r": 8, "roll": 16, "pitch": 16,
                                                           "yaw": 16})
    sigma_min: float = 0.05
    gaussians: dict[str, list[float]] = field(default_factory=dict)  # var -> [mu, sigma]; absent = uniform


def equal_probability_edges(n: int, lo: float, hi: float, mu: float | None = None, sigma: float | None = None,
                            sigma_min: float = 0.0) -> np.ndarray:
    """n bins between lo and hi: equal probability under N(mu, max(sigma, sigma_min)), or uniform."""
    if mu is None:
        return np.linspace(lo, hi, n + 1)
    s = max(sigma, sigma_min)
    cdf = np.linspace(norm.cdf(lo, mu, s), norm.cdf(hi, mu, s), n + 1)
    edges = norm.ppf(cdf, mu, s)
    edges[0], edges[-1] = lo, hi
    return edges


def to_spherical(xyz: np.ndarray) -> np.ndarray:
    r = np.linalg.norm(xyz, axis=-1)
    theta = np.arccos(np.clip(np.divide(xyz[..., 2], r, out=np.ones_like(r), where=r > 1e-12), -1, 1))
    phi = np.arctan2(xyz[..., 1], xyz[..., 0])
    return np.stack([theta, phi, r], -1)


def from_spherical(tpr: np.ndarray) -> np.ndarray:
    t, p, r = tpr[..., 0], tpr[..., 1], tpr[..., 2]
    return np.stack([r * np.sin(t) * np.cos(p), r * np.sin(t) * np.sin(p), r * np.cos(t)], -1)


class ActionGrid:
    def __init__(self, spec: GridSpec | None = None):
        self.spec = spec or GridSpec()
        self.edges = {}
        for var, n in self.spec.bins.items():
            mu, sigma = self.spec.gaussians.get(var, (None, None))
            self.edges[var] = equal_probability_edges(n, *RANGES[var], mu, sigma, self.spec.sigma_min)
        b = self.spec.bins
        self.n_translation = b["theta"] * b["phi"] * b["r"]
        self.n_rotation = b["roll"] * b["pitch"] * b["yaw"]
        self.vocab_size = self.n_translation + self.n_rotation + 2

    @classmethod
    def fit(cls, actions_norm: np.ndarray, spec: GridSpec | None = None) -> ActionGrid:
        """Fit one Gaussian per variable to (N, 7) normalized actions [xyz, rot(3), gripper]."""
        spec = GridSpec(**{**asdict(spec or GridSpec()), "gaussians": {}})
        a = np.asarray(actions_norm, dtype=np.float64).reshape(-1, 7)
        values = dict(zip(TRANSLATION, to_spherical(a[:, :3]).T)) | dict(zip(ROTATION, a[:, 3:6].T))
        spec.gaussians = {k: [float(v.mean()), float(v.std())] for k, v in values.items()}
        return cls(spec)

    def centres(self, var: str) -> np.ndarray:
        e = self.edges[var]
        return (e[:-1] + e[1:]) / 2

    def _index(self, var: str, x: np.ndarray) -> np.ndarray:
        e = self.edges[var]
        return np.clip(np.searchsorted(e, x, side="right") - 1, 0, len(e) - 2)

    def encode(self, actions_norm: np.ndarray) -> np.ndarray:
        """(..., 7) normalized actions -> (..., 3) tokens [translation, rotation, gripper]."""
        a = np.asarray(actions_norm, dtype=np.float64)
        b = self.spec.bins
        tpr = to_spherical(np.clip(a[..., :3], -1, 1))
        it, ip, ir = (self._index(v, tpr[..., i]) for i, v in enumerate(TRANSLATION))
        rot = [self._index(v, np.clip(a[..., 3 + i], -1, 1)) for i, v in enumerate(ROTATION)]
        t_tok = (it * b["phi"] + ip) * b["r"] + ir
        r_tok = self.n_translation + (rot[0] * b["pitch"] + rot[1]) * b["yaw"] + rot[2]
        g_tok = self.n_translation + self.n_rotation + (a[..., 6] > 0.5).astype(np.int64)
        return np.stack([t_tok, r_tok, g_tok], -1).astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """(..., 3) tokens -> (..., 7) normalized actions from bin midpoints (gripper 0 or 1)."""
        tok = np.asarray(tokens, dtype=np.int64)
        b = self.spec.bins
        t = np.clip(tok[..., 0], 0, self.n_translation - 1)
        ir, ip, it = t % b["r"], (t // b["r"]) % b["phi"], t // (b["r"] * b["phi"])
        tpr = np.stack([self.centres("theta")[it], self.centres("phi")[ip], self.centres("r")[ir]], -1)
        r = np.clip(tok[..., 1] - self.n_translation, 0, self.n_rotation - 1)
        i3, i2, i1 = r % b["yaw"], (r // b["yaw"]) % b["pitch"], r // (b["yaw"] * b["pitch"])
        rot = np.stack([self.centres("roll")[i1], self.centres("pitch")[i2], self.centres("yaw")[i3]], -1)
        grip = (tok[..., 2] - self.n_translation - self.n_rotation == 1).astype(np.float64)
        return np.concatenate([from_spherical(tpr), rot, grip[..., None]], -1)

    def adapt_embeddings(self, old: ActionGrid, old_emb: np.ndarray) -> np.ndarray:
        """New token embeddings: the old ones interpolated (linearly, per axis) at this grid's bin centres."""
        emb = np.zeros((self.vocab_size, old_emb.shape[1]), dtype=old_emb.dtype)
        for names, off_new, off_old in ((TRANSLATION, 0, 0), (ROTATION, self.n_translation, old.n_translation)):
            shape_old = [old.spec.bins[v] for v in names]
            n_old = int(np.prod(shape_old))
            grid = old_emb[off_old:off_old + n_old].reshape(*shape_old, -1)
            for axis, v in enumerate(names):
                grid = _interp_axis(grid, old.centres(v), self.centres(v), axis)
            n_new = int(np.prod([self.spec.bins[v] for v in names]))
            emb[off_new:off_new + n_new] = grid.reshape(n_new, -1)
        emb[-2:] = old_emb[-2:]
        return emb

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": "spatialvla_action_grid", "spec": asdict(self.spec)}, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> ActionGrid:
        """Read a tokenizer.json; a missing file, another format or a bad spec raises naming the file."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise TokenizerError(f"{path}: tokenizer file not found") from None
        except json.JSONDecodeError as exc:
            raise TokenizerError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("type") != "spatialvla_action_grid":
            raise TokenizerError(f"{path}: not a SpatialVLA action grid tokenizer")
        try:
            spec = GridSpec(**data["spec"])
        except (KeyError, TypeError) as exc:
            raise TokenizerError(f"{path}: bad 'spec' ({exc})") from None
        missing = sorted(set(RANGES) - set(spec.bins))
        if missing:
            raise TokenizerError(f"{path}: spec.bins lacks {missing}")
        return cls(spec)

    def mismatch(self, other: ActionGrid) -> str:
        """'' when both grids cut the same bins, else which variable differs."""
        for var in RANGES:
            a, b = self.edges[var], other.edges[var]
            if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-9):
                return (f"{var}: edges {np.round(a, 4).tolist()} ({len(a) - 1} bins) vs "
                        f"{np.round(b, 4).tolist()} ({len(b) - 1} bins)")
        return ""


def _interp_axis(grid: np.ndarray, x_old: np.ndarray, x_new: np.ndarray, axis: int) -> np.ndarray:
    """Piecewise-linear interpolation along `axis`, extrapolating linearly past the end centres."""
    i = np.clip(np.searchsorted(x_old, x_new) - 1, 0, len(x_old) - 2)
    w = (x_new - x_old[i]) / (x_old[i + 1] - x_old[i])
    g = np.moveaxis(grid, axis, 0)
    shape = (-1,) + (1,) * (g.ndim - 1)
    out = g[i] * (1 - w).reshape(shape) + g[i + 1] * w.reshape(shape)
    return np.moveaxis(out, 0, axis)
