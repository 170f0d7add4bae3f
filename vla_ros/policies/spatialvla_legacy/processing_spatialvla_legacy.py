"""SpatialVLA processing: actions <-> Adaptive Action Grid tokens (q01/q99-normalized first), the depth that
feeds Ego3D (sensor when fresh, else a local estimator), and the adaptive action ensembler."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vla_ros.core.constants import MOD_DEPTH
from vla_ros.policies.processing import ActionProcessor
from vla_ros.policies.tokenizers.action_grid import ActionGrid

IGNORE = -100  # target id of padded steps


@dataclass(frozen=True)
class GridActionCodec:
    """Raw actions (B, T, A, 7) <-> token ids (B, T * A * 3). The grid works on q01/q99-normalized values."""

    grid: ActionGrid
    actions: ActionProcessor  # with mode="q01_q99"

    def encode(self, action: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        arm, grip = self.actions.normalize(action)
        norm7 = torch.cat([arm, grip[..., None]], -1).detach().cpu().numpy()
        tok = torch.from_numpy(self.grid.encode(norm7)).to(action.device)  # (B, T, A, 3)
        if pad is not None:
            tok = tok.masked_fill(pad.to(tok.device)[:, :, None, None], IGNORE)
        return tok.flatten(1)

    def decode(self, tokens: torch.Tensor, horizon: int, n_arms: int) -> torch.Tensor:
        B = tokens.shape[0]
        norm7 = self.grid.decode(tokens.reshape(B, horizon, n_arms, 3).cpu().numpy())
        norm7 = torch.as_tensor(norm7, dtype=torch.float32, device=tokens.device)
        return self.actions.unnormalize(norm7[..., :6], norm7[..., 6])


def sensor_depth(batch: dict, modalities: tuple[str, ...]) -> torch.Tensor | None:
    """The batch's depth when asked for and valid somewhere in every image, else None."""
    if MOD_DEPTH not in modalities:
        return None
    valid = batch["depth_valid"].flatten(2).any(2)  # (B, S)
    return batch["depth_m"] if bool(valid.all()) else None


@torch.no_grad()
def estimate_depth(estimator: torch.nn.Module, rgb: torch.Tensor) -> torch.Tensor:
    """(B, S, 3, H, W) -> (B, S, H, W) depth from an ESM's depth head, run at its own input size."""
    B, S, _, H, W = rgb.shape
    size = estimator.cfg.img_size
    x = rgb if (H, W) == (size, size) else F.interpolate(rgb.flatten(0, 1), size=(size, size), mode="bilinear",
                                                           align_corners=False).reshape(B, S, 3, size, size)
    depth = estimator(x)["depth_m"]
    if (H, W) != (size, size):
        depth = F.interpolate(depth.flatten(0, 1)[:, None], size=(H, W), mode="nearest").reshape(B, S, H, W)
    return depth


class AdaptiveEnsembler:
    """SpatialVLA-style adaptive ensembling of overlapping chunks: for each step of the newest chunk, the
    earlier chunks' predictions for the same time are averaged with weights exp(alpha * cos(new, old)), so
    predictions that agree with the newest count more. Works on (T, A, D) arrays (normalized actions)."""

    def __init__(self, alpha: float = 0.1, history: int = 4):
        self.alpha, self.history = alpha, history
        self._chunks: list[tuple[float, np.ndarray]] = []

    def reset(self) -> None:
        self._chunks = []

    def __call__(self, stamp_s: float, dt_s: float, chunk: np.ndarray) -> np.ndarray:
        T = chunk.shape[0]
        out = chunk.astype(np.float64).copy()
        for j in range(T):
            preds, weights = [chunk[j]], [np.full(chunk.shape[1], np.exp(self.alpha))]  # cos(new, new) = 1
            for stamp_old, old in self._chunks:
                k = int(round((stamp_s - stamp_old) / dt_s))
                if 0 < k and j + k < old.shape[0]:
                    p = old[j + k]
                    cos = np.sum(p * chunk[j], -1) / (np.linalg.norm(p, axis=-1) * np.linalg.norm(chunk[j], axis=-1)
                                                       + 1e-9)
                    preds.append(p)
                    weights.append(np.exp(self.alpha * cos))
            w = np.stack(weights)  # (n, A)
            out[j] = np.einsum("na,nad->ad", w / w.sum(0), np.stack(preds))
        self._chunks = (self._chunks + [(stamp_s, chunk.copy())])[-self.history:]
        return out
