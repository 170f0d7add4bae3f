"""SpatialVLA: Ego3D position encoding added to the vision tokens, and actions as Adaptive Action Grid tokens
decoded autoregressively (T steps x arms x 3 tokens) from the VLM's hidden states."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.core.config import from_dict
from vla_ros.core.constants import MOD_DEPTH
from vla_ros.core.normalize import NormStats
from vla_ros.core.types import ActionChunk, Observation
from vla_ros.policies.baseline.modeling_baseline import BaselinePolicy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.falcon.modeling_falcon import load_esm_weights
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel
from vla_ros.policies.spatialvla.action_grid import ActionGrid
from vla_ros.policies.spatialvla.configuration_spatialvla import SpatialVLAConfig
from vla_ros.policies.spatialvla.ego3d import Ego3DEncoding

IGNORE = -100


class SpatialVLAPolicy(BaselinePolicy):
    method = "spatialvla"
    INPUTS = ("rgb", "depth")
    TINY_ARGS: dict = {}

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None):
        super().__init__(config, norm_stats)
        self.args = from_dict(SpatialVLAConfig, config.method_args, "method_args")
        self.grid = ActionGrid(self.args.grid)
        W = self.vlm.width
        self.ego3d = Ego3DEncoding(W, config.image_size // self.vlm.grid, self.args.n_freqs)  # one point set per token
        self.n_tokens = config.horizon * len(config.arm_names) * 3
        self.token_embed = nn.Embedding(self.grid.vocab_size + 1, W)  # last id = BOS
        self.token_pos = nn.Parameter(torch.randn(1, self.n_tokens, W) * 0.02)
        layer = nn.TransformerDecoderLayer(W, config.vlm.heads, 2 * W, dropout=0.0, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, self.args.decoder_layers)
        self.to_logits = nn.Linear(W, self.grid.vocab_size)
        seg = torch.zeros(3, self.grid.vocab_size, dtype=torch.bool)
        seg[0, : self.grid.n_translation] = True
        seg[1, self.grid.n_translation: self.grid.n_translation + self.grid.n_rotation] = True
        seg[2, -2:] = True
        self.register_buffer("allowed", seg.repeat(self.n_tokens // 3, 1), persistent=False)  # (L, V)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(self.n_tokens), persistent=False)
        self.depth_estimator = None
        if self.args.depth_estimator_checkpoint:
            self.depth_estimator = EmbodiedSpatialModel(self.args.depth_estimator)
            load_esm_weights(self.depth_estimator, self.args.depth_estimator_checkpoint)
            self.depth_estimator.requires_grad_(False)
        self._previous: ActionChunk | None = None

    # --- tokenizer ------------------------------------------------------------------------------------
    def fit_tokenizer(self, actions: np.ndarray) -> None:
        """Fit the grid's Gaussians to raw (N, A*7) actions (normalized with the checkpoint's stats first)."""
        a = torch.as_tensor(actions, dtype=torch.float32)
        if self.norm_stats is not None:
            a = self.norm_stats.normalize("action", a)
        self.grid = ActionGrid.fit(a.reshape(-1, 7).numpy(), self.args.grid)
        self.args.grid = self.grid.spec
        self.config.method_args["grid"] = {"bins": self.grid.spec.bins, "sigma_min": self.grid.spec.sigma_min,
                                           "gaussians": self.grid.spec.gaussians}

    # --- model ----------------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._previous = None

    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        depth, used_depth = None, False
        if MOD_DEPTH in modalities and bool(batch["depth_valid"].flatten(1).any(1).all()):
            depth, used_depth = batch["depth_m"], True
        elif self.depth_estimator is not None:
            with torch.no_grad():
                depth = self.depth_estimator(batch["rgb"])["depth_m"]
            used_depth = True
        vision_add = self.ego3d(depth, batch["K"]) if depth is not None else None
        out = self.run_vlm(batch, vision_add)
        out["ego3d"] = used_depth
        return out

    def _logits(self, memory: torch.Tensor, tokens_in: torch.Tensor) -> torch.Tensor:
        L = tokens_in.shape[1]
        x = self.token_embed(tokens_in) + self.token_pos[:, :L]
        y = self.decoder(x, memory, tgt_mask=self.causal[:L, :L], tgt_is_causal=True)
        logits = self.to_logits(y)
        return logits.masked_fill(~self.allowed[:L], float("-inf"))

    def target_tokens(self, batch: dict) -> torch.Tensor:
        arm, grip = self.split_target(batch)
        norm7 = torch.cat([arm, grip[..., None]], -1).detach().cpu().numpy()
        tok = torch.from_numpy(self.grid.encode(norm7)).to(arm.device)  # (B, T, A, 3)
        if "action_pad" in batch:
            tok = tok.masked_fill(batch["action_pad"][:, :, None, None], IGNORE)
        return tok.flatten(1)

    def head_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.target_tokens(batch)
        bos = torch.full_like(target[:, :1], self.grid.vocab_size)
        inp = torch.cat([bos, target[:, :-1].clamp(min=0)], 1)
        logits = self._logits(feats["hidden_states"][-1], inp)
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE)
        acc = ((logits.argmax(-1) == target) | (target == IGNORE)).float().mean()
        return loss, {"token_ce": float(loss.detach()), "token_acc": float(acc)}

    def predict_actions(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        feats = self.encode(batch, modalities)
        memory = feats["hidden_states"][-1]
        B = memory.shape[0]
        tokens = torch.full((B, 1), self.grid.vocab_size, dtype=torch.long, device=memory.device)
        for _ in range(self.n_tokens):
            nxt = self._logits(memory, tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], 1)
        cfg = self.config
        norm7 = self.grid.decode(tokens[:, 1:].reshape(B, cfg.horizon, len(cfg.arm_names), 3).cpu().numpy())
        norm7 = torch.as_tensor(norm7, dtype=torch.float32, device=memory.device)
        return self.to_actions(norm7[..., :6], (norm7[..., 6] * 2 - 1) * 20.0)

    def infer(self, obs: Observation, modalities: tuple[str, ...] | None = None) -> ActionChunk:
        chunk = super().infer(obs, modalities)
        if self.args.ensemble_decay > 0:
            from vla_ros.core.chunking import ensemble_chunks

            blended = ensemble_chunks(self._previous, chunk, self.args.ensemble_decay)
            self._previous = chunk
            chunk = blended
        return chunk
