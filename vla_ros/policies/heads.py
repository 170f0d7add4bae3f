"""Action heads: an MLP that emits a chunk at once, and an LSTM over a history window of action tokens.

Both output normalized arm values through tanh (6 per arm) and gripper logits; the loss is Huber or MSE
on the arm plus a weighted BCE on the gripper, masked past the episode end.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.policies.config import HeadConfig


class _HeadBase(nn.Module):
    def __init__(self, cfg: HeadConfig, horizon: int, n_arms: int):
        super().__init__()
        self.cfg, self.horizon, self.n_arms = cfg, horizon, n_arms

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = out.reshape(out.shape[0], self.horizon, self.n_arms, 7)
        return torch.tanh(out[..., :6]), out[..., 6]

    def loss(self, hidden, target_arm, target_grip, pad=None) -> tuple[torch.Tensor, dict[str, float]]:
        arm, logit = self.predict(hidden, train=True)
        keep = torch.ones(arm.shape[:2], device=arm.device) if pad is None else (~pad).float()
        keep = keep[..., None]  # (B, T, 1)
        if self.cfg.arm_loss == "huber":
            arm_l = F.huber_loss(arm, target_arm, reduction="none", delta=self.cfg.huber_delta).mean(-1)
        else:
            arm_l = F.mse_loss(arm, target_arm, reduction="none").mean(-1)
        grip_l = F.binary_cross_entropy_with_logits(logit, (target_grip > 0.5).float(), reduction="none")
        denom = keep.sum().clamp(min=1) * self.n_arms
        arm_loss, grip_loss = (arm_l * keep).sum() / denom, (grip_l * keep).sum() / denom
        acc = (((logit > 0) == (target_grip > 0.5)).float() * keep).sum() / denom
        total = arm_loss + self.cfg.gripper_weight * grip_loss
        return total, {"arm_loss": float(arm_loss.detach()), "gripper_bce": float(grip_loss.detach()),
                       "gripper_acc": float(acc)}


class MLPHead(_HeadBase):
    def __init__(self, cfg: HeadConfig, width: int, horizon: int, n_arms: int):
        super().__init__(cfg, horizon, n_arms)
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, horizon * n_arms * 7))

    def predict(self, hidden: torch.Tensor, train: bool = False):
        return self._split(self.net(hidden))


class LSTMHead(_HeadBase):
    """Keeps the last `history` action tokens across `predict` calls at inference (cleared by reset())."""

    def __init__(self, cfg: HeadConfig, width: int, horizon: int, n_arms: int):
        super().__init__(cfg, horizon, n_arms)
        self.lstm = nn.LSTM(width, cfg.hidden, batch_first=True)
        self.out = nn.Linear(cfg.hidden, horizon * n_arms * 7)
        self._history: list[torch.Tensor] = []

    def reset(self) -> None:
        self._history = []

    def predict(self, hidden: torch.Tensor, train: bool = False):
        if hidden.dim() == 3:  # (B, W_hist, width) given by a caller with history
            seq = hidden
        elif train:
            seq = hidden[:, None]
        else:
            self._history = (self._history + [hidden])[-self.cfg.history:]
            seq = torch.stack(self._history, 1)
        y, _ = self.lstm(seq)
        return self._split(self.out(y[:, -1]))


def make_head(cfg: HeadConfig, width: int, horizon: int, n_arms: int) -> nn.Module:
    return (MLPHead if cfg.kind == "mlp" else LSTMHead)(cfg, width, horizon, n_arms)
