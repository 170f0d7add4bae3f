"""SpatialVLA processing as the reference: the prompt, ZoeDepth's input transform, the adaptive action grids
(explicit bin_policy edges, or edges from Gaussians), q01/q99 un-normalisation with the per-dim mask, and
SimplerEnv's ActionEnsembler."""
from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation
from scipy.stats import norm

RANGES = {"theta_bins": (0.0, np.pi), "phi_bins": (-np.pi, np.pi), "r_bins": (0.0, np.sqrt(3.0)),
          "roll_bins": (-1.0, 1.0), "pitch_bins": (-1.0, 1.0), "yaw_bins": (-1.0, 1.0)}
TRANSLATION = ("theta_bins", "phi_bins", "r_bins")
ROTATION = ("roll_bins", "pitch_bins", "yaw_bins")
IMAGE_TOKEN, BOS_TOKEN, EOS_TOKEN = "<image>", "<bos>", "<eos>"
ACTION_TOKEN = "<ACTION{:05d}>"
ZOE_PAD_PX, ZOE_SIZE_PX = 31, 384
SIGLIP_MEAN = ZOE_MEAN = 0.5
SIGLIP_STD = ZOE_STD = 0.5


class SpatialVLAInputError(ValueError):
    """A processor file or value does not fit; the message names it."""


def build_prompt(instruction: str, n_image_tokens: int) -> str:
    """<image> x n, <bos>, the lower-cased instruction, a newline (PaliGemma's layout, as the reference)."""
    return IMAGE_TOKEN * n_image_tokens + BOS_TOKEN + instruction.lower() + "\n"


def zoe_preprocess(pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> ZoeDepth input: reflect-pad 31 px, bicubic (align_corners) to 384x384,
    normalise with mean = std = 0.5."""
    p = ZOE_PAD_PX
    x = F.pad(pixel_values, (p, p, p, p), mode="reflect")
    x = F.interpolate(x, size=(ZOE_SIZE_PX, ZOE_SIZE_PX), mode="bicubic", align_corners=True)
    return (x - ZOE_MEAN) / ZOE_STD


def zoe_postprocess(predicted_depth: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 384, 384) ZoeDepth output -> (B, 1, H, W): bicubic back to the padded size, then the pad cropped."""
    p = ZOE_PAD_PX
    d = F.interpolate(predicted_depth[:, None], size=(height + 2 * p, width + 2 * p), mode="bicubic",
                      align_corners=True)
    return d[..., p:-p, p:-p]


def gaussian_bin_policy(gs_params: dict, num_bins: dict, min_sigma: float = 0.0) -> dict:
    """Equal-probability edges under N(mu, max(sigma, min_sigma)) between each variable's range limits
    (the reference's get_bin_policy; gs_params[name] = {mu, sigma} with name 'theta', 'roll', ...)."""
    out = {}
    for group, names in (("translation", TRANSLATION), ("rotation", ROTATION)):
        out[group] = {}
        for name in names:
            lo, hi = RANGES[name]
            g = gs_params[name.split("_")[0]]
            s = max(g["sigma"], min_sigma)
            p = np.linspace(norm.cdf(lo, g["mu"], s), norm.cdf(hi, g["mu"], s), num_bins[group][name] + 1)
            out[group][name] = np.clip(norm.ppf(p, g["mu"], s), lo, hi).tolist()
    return out


def reference_actions(actions: np.ndarray) -> np.ndarray:
    """(..., 7) vla_ros actions [dxyz, rotation vector, gripper] -> the reference's [dxyz, roll, pitch, yaw, gripper]
    (extrinsic x-y-z Euler, as postprocess inverts)."""
    a = np.asarray(actions, np.float64)
    euler = Rotation.from_rotvec(a[..., 3:6].reshape(-1, 3)).as_euler("xyz").reshape(*a.shape[:-1], 3)
    return np.concatenate([a[..., :3], euler, a[..., 6:7]], -1)


def dataset_statistics(actions: np.ndarray, mask: list[bool] | None = None) -> dict:
    """The processor's statistics entry for raw (N, 7) reference actions: {action: {mean, std, max, min, q01, q99,
    mask}, num_transitions}; the mask (default: all but the gripper) says which dims BOUNDS_Q99 normalises."""
    a = np.asarray(actions, np.float64).reshape(-1, 7)
    if not len(a) or not np.isfinite(a).all():
        raise SpatialVLAInputError(f"statistics: {len(a)} actions, finite: {bool(np.isfinite(a).all())}")
    m = [True] * 6 + [False] if mask is None else list(mask)
    q01, q99 = np.quantile(a, 0.01, axis=0), np.quantile(a, 0.99, axis=0)
    stat = {"mean": a.mean(0), "std": a.std(0), "max": a.max(0), "min": a.min(0), "q01": q01, "q99": q99}
    return {"action": {**{k: v.tolist() for k, v in stat.items()}, "mask": m}, "num_transitions": int(len(a))}


def gaussian_params(normalized: np.ndarray) -> dict:
    """{x, y, z, theta, phi, r, roll, pitch, yaw: {mu, sigma}} of (N, 7) normalised actions, the statistic the
    reference's pretraining reads (gs_*.json): translation also in spherical coordinates."""
    a = np.asarray(normalized, np.float64).reshape(-1, 7)
    x, y, z = a[:, 0], a[:, 1], a[:, 2]
    cols = {"x": x, "y": y, "z": z, "theta": np.arctan2(np.sqrt(x ** 2 + y ** 2), z), "phi": np.arctan2(y, x),
            "r": np.sqrt(x ** 2 + y ** 2 + z ** 2), "roll": a[:, 3], "pitch": a[:, 4], "yaw": a[:, 5]}
    return {k: {"mu": float(v.mean()), "sigma": float(v.std())} for k, v in cols.items()}


class SpatialActionGrid:
    """Normalised 7-d actions <-> 3 action indices per step (translation, rotation, gripper), as the reference's
    SpatialActionTokenizer; indices are offsets from action_token_begin_idx."""

    def __init__(self, bin_policy: dict, num_bins: dict, use_spherical: bool = True):
        self.edges = {}
        for group, names in (("translation", TRANSLATION), ("rotation", ROTATION)):
            for name in names:
                try:
                    e = np.asarray(bin_policy[group][name], dtype=np.float64)
                except KeyError:
                    raise SpatialVLAInputError(f"bin_policy.{group}.{name}: missing") from None
                n = num_bins[group][name]
                if e.shape != (n + 1,) or np.any(np.diff(e) < 0):
                    raise SpatialVLAInputError(f"bin_policy.{group}.{name}: expected {n + 1} non-decreasing edges "
                                               f"(num_bins {n}), got shape {e.shape}")
                self.edges[name] = e
        self.nb = {name: len(e) - 1 for name, e in self.edges.items()}
        self.use_spherical = use_spherical
        self.n_translation = self.nb["theta_bins"] * self.nb["phi_bins"] * self.nb["r_bins"]
        self.n_rotation = self.nb["roll_bins"] * self.nb["pitch_bins"] * self.nb["yaw_bins"]
        self.n_gripper = int(num_bins["gripper"])
        self.vocab_size = self.n_translation + self.n_rotation + self.n_gripper

    def slot_ranges(self) -> list[tuple[int, int]]:
        """[start, stop) of the translation, rotation and gripper indices."""
        a, b = self.n_translation, self.n_translation + self.n_rotation
        return [(0, a), (a, b), (b, self.vocab_size)]

    def _mid(self, name: str, i: np.ndarray) -> np.ndarray:
        e = self.edges[name]
        return 0.5 * (e[i] + e[i + 1])

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """(N, 7) normalised actions -> (N, 3) indices."""
        a = np.clip(np.asarray(actions, np.float64).reshape(-1, 7), -1.0, 1.0)
        x, y, z = a[:, 0], a[:, 1], a[:, 2]
        if self.use_spherical:
            t, p, r = np.arctan2(np.sqrt(x ** 2 + y ** 2), z), np.arctan2(y, x), np.sqrt(x ** 2 + y ** 2 + z ** 2)
        else:
            t, p, r = x, y, z
        it, ip, ir = (np.digitize(v, self.edges[n][1:-1]) for v, n in zip((t, p, r), TRANSLATION))
        trans = (it * self.nb["phi_bins"] + ip) * self.nb["r_bins"] + ir
        rot_i = [np.clip(np.digitize(a[:, 3 + k], self.edges[n]) - 1, 0, self.nb[n] - 1)
                 for k, n in enumerate(ROTATION)]
        rot = self.n_translation + (rot_i[0] * self.nb["pitch_bins"] + rot_i[1]) * self.nb["yaw_bins"] + rot_i[2]
        grip = self.n_translation + self.n_rotation + (a[:, 6] >= 0.5).astype(np.int64)
        return np.stack([trans, rot, grip], 1).astype(np.int64)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """(N, 3) indices -> (N, 7) normalised actions: bin midpoints; translation back to Cartesian and clipped
        to [-1, 1]; gripper 0 or 1. Out-of-slot indices are clipped into the slot, as the reference."""
        ids = np.asarray(indices, np.int64).reshape(-1, 3)
        nr, nphi, ny, npitch = self.nb["r_bins"], self.nb["phi_bins"], self.nb["yaw_bins"], self.nb["pitch_bins"]
        t = np.clip(ids[:, 0], 0, self.n_translation - 1)
        it, ip, ir = t // (nphi * nr), (t % (nphi * nr)) // nr, t % nr
        th, ph, r = self._mid("theta_bins", it), self._mid("phi_bins", ip), self._mid("r_bins", ir)
        if self.use_spherical:
            xyz = np.stack([r * np.sin(th) * np.cos(ph), r * np.sin(th) * np.sin(ph), r * np.cos(th)], 1)
        else:
            xyz = np.stack([th, ph, r], 1)
        xyz = np.clip(xyz, -1.0, 1.0)
        q = np.clip(ids[:, 1], self.n_translation, self.n_translation + self.n_rotation - 1) - self.n_translation
        rpy = np.stack([self._mid("roll_bins", q // (npitch * ny)), self._mid("pitch_bins", (q % (npitch * ny)) // ny),
                        self._mid("yaw_bins", q % ny)], 1)
        g = np.clip(ids[:, 2], self.n_translation + self.n_rotation, self.vocab_size - 1)
        grip = (g - self.n_translation - self.n_rotation != 0).astype(np.float64)
        return np.concatenate([xyz, rpy, grip[:, None]], 1)


def action_stats(statistics: dict, unnorm_key: str) -> dict:
    """statistics[unnorm_key]['action'], or an error listing the available keys."""
    if unnorm_key not in statistics:
        raise SpatialVLAInputError(f"unnorm_key {unnorm_key!r} is not in the processor statistics; available: "
                                   f"{sorted(statistics)}")
    try:
        s = statistics[unnorm_key]["action"]
        for k in ("q01", "q99"):
            s[k]
    except (KeyError, TypeError):
        raise SpatialVLAInputError(f"statistics[{unnorm_key!r}].action: needs q01 and q99") from None
    return s


def unnormalize(actions: np.ndarray, stats: dict) -> np.ndarray:
    """0.5 (a + 1)(q99 - q01) + q01 on the dims where mask is true (all when no mask), as the reference."""
    lo, hi = np.asarray(stats["q01"], np.float64), np.asarray(stats["q99"], np.float64)
    mask = np.asarray(stats.get("mask", np.ones(len(lo))), dtype=bool)
    return np.where(mask, 0.5 * (actions + 1.0) * (hi - lo) + lo, actions)


def normalize(actions: np.ndarray, stats: dict) -> np.ndarray:
    """The training direction (BOUNDS_Q99): clip(2 (x - q01) / (q99 - q01 + 1e-8) - 1, -1, 1) where mask is true;
    a dimension whose min equals its max is set to 0, as the reference does."""
    lo, hi = np.asarray(stats["q01"], np.float64), np.asarray(stats["q99"], np.float64)
    mask = np.asarray(stats.get("mask", np.ones(len(lo))), dtype=bool)
    n = np.clip(2.0 * (actions - lo) / (hi - lo + 1e-8) - 1.0, -1.0, 1.0)
    out = np.where(mask, n, actions)
    if "min" in stats and "max" in stats:
        out = np.where(np.asarray(stats["min"]) == np.asarray(stats["max"]), 0.0, out)
    return out


class ActionEnsembler:
    """SimplerEnv's ActionEnsembler: keep the last `horizon` chunks; for the current step take, from the chunk
    predicted k steps ago, its step k; average with weights exp(-temp * i), i = 0 for the oldest prediction."""

    def __init__(self, horizon: int = 4, temp: float = -0.8):
        self.temp = temp
        self.history: deque = deque(maxlen=horizon)

    def reset(self) -> None:
        self.history.clear()

    def weights(self, n: int) -> np.ndarray:
        w = np.exp(-self.temp * np.arange(n))
        return w / w.sum()

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        """(T, D) newest chunk -> (D,) ensembled action for the current step."""
        self.history.append(np.asarray(chunk))
        n = len(self.history)
        preds = np.stack([c[min(age, len(c) - 1)] for age, c in zip(range(n - 1, -1, -1), self.history)])
        return (self.weights(n)[:, None] * preds).sum(0)
