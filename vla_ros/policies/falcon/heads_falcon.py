"""FALCON's action heads as released (RoboVLMs `policy_head/base_policy.py`), parameter names included, so a
Lightning checkpoint's `model.act_head.*` keys load one for one.

FCDecoder(_ESM): the action token's last hidden state (B*L, D) [+ the injected spatial feature] -> `mlp`
(D -> D/2 -> hidden) -> `actions` (MLPTanhHead, chunk * 6 arm values in [-1, 1]) and `gripper` (chunk logits).
LSTMDecoder(_ESM): the same heads after a 4-layer LSTM over the window. The ESM variants own the frozen ESM as
`vggt_net` and a `spatial_injector` (PCDInjector_V1) whose last projection is zero-initialised, so a fresh
stage 2 starts exactly where stage 1 ended.
"""
from __future__ import annotations

import torch
from torch import nn


def _mlp(widths: list[int], tanh: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    if tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class MLPTanhHead(nn.Module):
    """Linear/ReLU stack ending in tanh (`mlp.0`, `mlp.2`, ... as in the reference; widths 1024, 512, 256)."""

    def __init__(self, in_dim: int, out_dim: int, widths: list[int], tanh: bool = True):
        super().__init__()
        self.mlp = _mlp([in_dim, *widths, out_dim], tanh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class PCDInjector_V1(nn.Module):  # noqa: N801 - the reference's class name
    """Spatial feature (.., C_esm) -> (.., D): proj0 = Linear + LN, adapter = Linear, GELU, LN, Linear, GELU,
    proj1 = Linear (zero-initialised). Widths 512 and 1024 in the reference."""

    def __init__(self, in_dim: int, out_dim: int, widths: tuple[int, int] = (512, 1024)):
        super().__init__()
        w0, w1 = widths
        self.proj0 = nn.Sequential(nn.Linear(in_dim, w0), nn.LayerNorm(w0))
        self.adapter = nn.Sequential(nn.Linear(w0, w1), nn.GELU(), nn.LayerNorm(w1), nn.Linear(w1, w1), nn.GELU())
        self.proj1 = nn.Sequential(nn.Linear(w1, out_dim))
        with torch.no_grad():  # the reference's initialize_param_updated, then zero_init(proj1[0])
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            nn.init.zeros_(self.proj1[0].weight)
            nn.init.zeros_(self.proj1[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj1(self.adapter(self.proj0(x)))


def _xavier_children(module: nn.Module) -> None:
    """The reference's `initialize_param` (plain decoders): Xavier weights, zero biases, recursively."""
    with torch.no_grad():
        for m in module.children():
            if hasattr(m, "weight") and isinstance(m.weight, torch.Tensor):
                if m.weight.dim() > 1:
                    nn.init.xavier_uniform_(m.weight)
                if getattr(m, "bias", None) is not None:
                    m.bias.fill_(0)
            else:
                _xavier_children(m)


class FalconActionHead(nn.Module):
    """FCDecoder / FCDecoder_ESM ("fc") or LSTMDecoder / LSTMDecoder_ESM ("lstm").

    Args:
        kind: "fc" or "lstm". in_features: the VLM width D. hidden_size: head width (1024).
        chunk: actions per prediction (fwd_pred_next_n). action_dim: 7 (6 arm + gripper).
        mlp_widths: the MLPTanhHead widths ([1024, 512, 256]). esm: the frozen ESM module or None (stage 1).
        esm_dim: its token width (2048). injector_widths: PCDInjector_V1's (512, 1024).
        lstm_layers: 4. window: the LSTM's history length.
    """

    def __init__(self, kind: str, in_features: int, hidden_size: int, chunk: int, action_dim: int,
                 mlp_widths: list[int], esm: nn.Module | None, esm_dim: int, injector_widths: tuple[int, int],
                 lstm_layers: int = 4, window: int = 1):
        super().__init__()
        self.kind, self.chunk, self.window = kind, chunk, window
        if kind == "fc":
            self.mlp = nn.Sequential(nn.Linear(in_features, in_features // 2), nn.ReLU(),
                                     nn.Linear(in_features // 2, hidden_size))
        else:
            self.rnn = nn.LSTM(in_features, hidden_size, lstm_layers, batch_first=True)
        self.actions = MLPTanhHead(hidden_size, chunk * (action_dim - 1), mlp_widths, tanh=True)
        self.gripper = MLPTanhHead(hidden_size, chunk, mlp_widths, tanh=False)
        if esm is None:
            _xavier_children(self)  # FCDecoder and LSTMDecoder call initialize_param; the _ESM variants do not
        if esm is not None:
            self.vggt_net = esm
            self.spatial_injector = PCDInjector_V1(esm_dim, in_features, injector_widths)
        self.reset()

    @property
    def uses_esm(self) -> bool:
        return hasattr(self, "vggt_net")

    def reset(self) -> None:
        """Clear the LSTM's rolling history (the reference's history_memory / hidden_state)."""
        self.history: list[torch.Tensor] = []
        self.hidden_state = None

    def _out(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        arm = self.actions(x).unflatten(-1, (self.chunk, -1))
        return arm, self.gripper(x)

    def forward(self, t_act: torch.Tensor, spatial: torch.Tensor | None = None, rollout: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """t_act (B, L, D) action-token states of L frames; spatial (B, L, D) injected features or None.
        Returns arm (B, L, chunk, 6) in [-1, 1] and gripper logits (B, L, chunk). `rollout` (LSTM, t_act of one
        step, spatial over the ESM's frame buffer (B, <= window, D)): keep the reference's rolling window."""
        if self.kind == "fc" or not rollout:
            x = t_act if spatial is None else t_act + spatial
            if self.kind == "fc":
                return self._out(self.mlp(x))
            y, _ = self.rnn(x)
            return self._out(y)
        self.history.append(t_act)
        if len(self.history) <= self.window:
            x = t_act if spatial is None else t_act + spatial[:, -1:]
            y, self.hidden_state = self.rnn(x, self.hidden_state)
        else:  # refresh from the last `window` action tokens, each with its frame's spatial feature
            self.history = self.history[-self.window:]
            seq = torch.cat(self.history, 1)
            if spatial is not None:
                seq = seq + spatial
            self.hidden_state = None
            y, _ = self.rnn(seq)
        return self._out(y[:, -1:])
