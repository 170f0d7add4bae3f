"""SpatialVLA: an Ego3D position encoding added to the vision tokens, and actions as Adaptive Action Grid tokens
(3 per arm step) decoded autoregressively from the VLM's hidden states, optionally ensembled across chunks."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.core.config import from_dict, to_dict
from vla_ros.core.normalize import NormStats
from vla_ros.core.types import Observation
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import register_policy
from vla_ros.policies.processing import ActionProcessor
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, load_esm_weights
from vla_ros.policies.spatialvla_legacy.configuration_spatialvla_legacy import SpatialVLAConfig
from vla_ros.policies.spatialvla_legacy.ego3d import Ego3DEncoding
from vla_ros.policies.spatialvla_legacy.processing_spatialvla_legacy import (
    IGNORE,
    AdaptiveEnsembler,
    GridActionCodec,
    estimate_depth,
    sensor_depth,
)
from vla_ros.policies.tokenizers.action_grid import ActionGrid
from vla_ros.policies.vlm_policy import VLMPolicy


@register_policy
class SpatialVLALegacyPolicy(VLMPolicy):
    method = "spatialvla_legacy"
    INPUTS = ("rgb", "depth")
    TINY_ARGS: dict = {}
    FITTED_ARGS = ("grid",)  # cut from the training data (fit_tokenizer)

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        super().__init__(config, norm_stats, external_weights)
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
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(self.n_tokens), persistent=False)
        self._set_allowed()
        self.depth_estimator = None
        if self.args.depth_estimator_checkpoint:
            self.depth_estimator = EmbodiedSpatialModel(self.args.depth_estimator)
            if external_weights:
                self.depth_estimator_load_report = load_esm_weights(self.depth_estimator,
                                                                    self.args.depth_estimator_checkpoint)
            self.depth_estimator.requires_grad_(False)
        self.ensembler = AdaptiveEnsembler(self.args.ensemble_alpha, self.args.ensemble_history)

    # --- tokenizer ------------------------------------------------------------------------------------
    @property
    def codec(self) -> GridActionCodec:
        return GridActionCodec(self.grid, ActionProcessor(self.norm_stats, "q01_q99"))

    def _set_allowed(self) -> None:
        g = self.grid
        seg = torch.zeros(3, g.vocab_size, dtype=torch.bool)
        seg[0, : g.n_translation] = True
        seg[1, g.n_translation: g.n_translation + g.n_rotation] = True
        seg[2, -2:] = True
        self.register_buffer("allowed", seg.repeat(self.n_tokens // 3, 1), persistent=False)  # (L, V)

    def _normalized_7(self, actions: np.ndarray) -> np.ndarray:
        a = torch.as_tensor(np.asarray(actions, np.float32).reshape(-1, 1, len(self.config.arm_names), 7))
        arm, grip = ActionProcessor(self.norm_stats, "q01_q99").normalize(a)
        return torch.cat([arm, grip[..., None]], -1).reshape(-1, 7).numpy()

    def _store_grid(self, grid: ActionGrid) -> None:
        self.grid = grid
        self.args.grid = grid.spec
        self.config.method_args["grid"] = to_dict(grid.spec)

    def fit_tokenizer(self, actions: np.ndarray) -> None:
        """Cut the grid from raw (N, A*7) actions (q01/q99-normalized with the policy's stats first)."""
        self._store_grid(ActionGrid.fit(self._normalized_7(actions), self.args.grid))

    @torch.no_grad()
    def adapt_tokenizer(self, actions: np.ndarray, norm_stats: NormStats | None = None) -> None:
        """Spatial embedding adaptation to a new robot: re-cut the grid from its actions (with its stats, if
        given) and initialise the new token embeddings and output rows by interpolating the old ones over the
        bin centres. The bin counts stay, so the vocabulary size does not change."""
        if norm_stats is not None:
            self.norm_stats = norm_stats
            self.actions = ActionProcessor(norm_stats)
        old = self.grid
        new = ActionGrid.fit(self._normalized_7(actions), self.args.grid)
        emb = self.token_embed.weight.detach().cpu().numpy()
        out_w = self.to_logits.weight.detach().cpu().numpy()
        out_b = self.to_logits.bias.detach().cpu().numpy()[:, None]
        new_emb = new.adapt_embeddings(old, emb[: old.vocab_size])
        self.token_embed.weight[: new.vocab_size] = torch.from_numpy(new_emb).to(self.token_embed.weight)
        self.to_logits.weight.copy_(torch.from_numpy(new.adapt_embeddings(old, out_w)).to(self.to_logits.weight))
        self.to_logits.bias.copy_(torch.from_numpy(new.adapt_embeddings(old, out_b)[:, 0]).to(self.to_logits.bias))
        self._store_grid(new)

    # --- model ----------------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.ensembler.reset()

    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        depth = sensor_depth(batch, modalities)
        if depth is None and self.depth_estimator is not None:
            depth = estimate_depth(self.depth_estimator, batch["rgb"])
        vision_add = self.ego3d(depth, batch["K"]) if depth is not None else None
        out = self.run_vlm(batch, vision_add)
        out["ego3d"] = depth is not None
        return out

    def _logits(self, memory: torch.Tensor, tokens_in: torch.Tensor) -> torch.Tensor:
        L = tokens_in.shape[1]
        x = self.token_embed(tokens_in) + self.token_pos[:, :L]
        y = self.decoder(x, memory, tgt_mask=self.causal[:L, :L], tgt_is_causal=True)
        return self.to_logits(y).masked_fill(~self.allowed[:L], float("-inf"))

    def head_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.codec.encode(batch["action"], batch.get("action_pad"))
        bos = torch.full_like(target[:, :1], self.grid.vocab_size)
        inp = torch.cat([bos, target[:, :-1].clamp(min=0)], 1)
        logits = self._logits(feats["hidden_states"][-1], inp)
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE)
        keep = target != IGNORE
        acc = ((logits.argmax(-1) == target) & keep).sum() / keep.sum().clamp(min=1)
        return loss, {"token_ce": float(loss.detach()), "token_acc": float(acc)}

    def predict_actions(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        """Greedy autoregressive decoding of T steps x arms x 3 tokens -> (B, T, A, 7) raw actions."""
        memory = self.encode(batch, modalities)["hidden_states"][-1]
        tokens = torch.full((memory.shape[0], 1), self.grid.vocab_size, dtype=torch.long, device=memory.device)
        for _ in range(self.n_tokens):
            nxt = self._logits(memory, tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, nxt], 1)
        return self.codec.decode(tokens[:, 1:], self.config.horizon, len(self.config.arm_names))

    def postprocess(self, actions: np.ndarray, obs: Observation) -> np.ndarray:
        if not self.args.ensemble:
            return actions
        proc = ActionProcessor(self.norm_stats, "q01_q99")
        arm, grip = proc.normalize(torch.as_tensor(actions[None], dtype=torch.float32))
        norm = torch.cat([arm, grip[..., None]], -1)[0].numpy()
        ens = torch.as_tensor(self.ensembler(obs.stamp_s, self.config.dt_s, norm), dtype=torch.float32)[None]
        return proc.unnormalize(ens[..., :6], ens[..., 6])[0].numpy()
