"""π0 (Black et al. 2024; openpi `pi0_pytorch.py`) as a vla_ros policy.

Prefix: each camera image through SigLIP + projector (256 tokens at 224 px), then the prompt tokens (embedding x
sqrt(width)); full attention inside the prefix. Suffix (action expert): a state token (state_proj) and
`horizon` action tokens (action_in_proj of the noisy actions, concatenated with a sin-cos embedding of t,
action_time_mlp_in -> swish -> action_time_mlp_out); the state token starts a new causal block, the action tokens
another, each attending to everything before it. The expert's outputs for the action tokens -> action_out_proj
-> the velocity. Training: t ~ Beta(1.5, 1) * 0.999 + 0.001, x_t = t * noise + (1 - t) * actions, target
u = noise - actions, MSE. Inference: the prefix once (its KV cache), then 10 Euler steps from t = 1 to 0.

Robot actions (7 per arm, normalised with the checkpoint's stats, z-score) and proprio are zero-padded to the
model's action_dim (32); the first 7 x arms outputs are the chunk.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.core.config import check, from_dict
from vla_ros.core.normalize import NormStats
from vla_ros.policies.base import Policy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import register_policy
from vla_ros.policies.pi0.configuration_pi0 import Pi0Config
from vla_ros.policies.pi0.paligemma_with_expert import PaliGemmaWithExpert
from vla_ros.policies.pi0.processing_pi0 import (
    PromptTokenizer,
    augment_image,
    make_att_2d_masks,
    pad_to_dim,
    resize_with_pad,
    sinusoidal_time_embedding,
)

NORM_EPS = 1e-6  # openpi's
TINY_GEMMA = {"depth": 2, "num_heads": 2, "num_kv_heads": 1, "head_dim": 16}


@register_policy
class Pi0Policy(Policy):
    method = "pi0"
    TINY_ARGS = {"paligemma": {"width": 64, "mlp_dim": 128, **TINY_GEMMA},
                 "action_expert": {"width": 32, "mlp_dim": 64, **TINY_GEMMA},
                 "vision": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                            "intermediate_size": 64, "patch_size": 16},
                 "vocab_size": 300, "action_dim": 16, "max_token_len": 16, "tokenizer": "bytes", "augment": False,
                 "spatial_forcing": {"align_layer": 1, "teacher": {
                     "embed_dim": 32, "heads": 2, "depth": 2, "patch_size": 16, "img_size": 64, "dino_depth": 1,
                     "depth_input": False, "pose_input": False}}}

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        super().__init__(config, norm_stats, external_weights)
        args = self.args = from_dict(Pi0Config, config.method_args, "method_args")
        check(config.image_size % args.vision.patch_size == 0, "image_size", config.image_size,
              f"must be a multiple of method_args.vision.patch_size={args.vision.patch_size}")
        check(config.action_dim <= args.action_dim and config.proprio_dim <= args.action_dim, "method_args.action_dim",
              args.action_dim, f"must hold {config.action_dim} action and {config.proprio_dim} proprio values")
        self.n_slots = args.image_slots or len(config.camera_names)
        check(self.n_slots >= len(config.camera_names), "method_args.image_slots", args.image_slots,
              f"must be >= the {len(config.camera_names)} cameras")
        self.paligemma_with_expert = PaliGemmaWithExpert(args, config.image_size)
        we = args.action_expert.width
        self.action_in_proj = nn.Linear(args.action_dim, we)
        self.action_out_proj = nn.Linear(we, args.action_dim)
        self.state_proj = nn.Linear(args.action_dim, we)
        self.action_time_mlp_in = nn.Linear(2 * we, we)
        self.action_time_mlp_out = nn.Linear(we, we)
        self.tokenizer = PromptTokenizer(args.tokenizer, args.tokenizer_path, args.max_token_len)
        sf = args.spatial_forcing
        if sf.enabled:
            from vla_ros.policies.spatial_model.forcing import AlignProjector

            self.align_projector = AlignProjector(args.paligemma.width, sf.teacher.embed_dim, sf.use_vlm_norm)
        self._teacher: list = []  # a list keeps the teacher out of state_dict(), .to() and DDP
        if external_weights and args.base_weights:
            from vla_ros.policies.pi0.loading_pi0 import load_openpi_weights

            load_openpi_weights(self, args.base_weights)
        if args.lora.enabled:
            from vla_ros.policies.pi0.lora_pi0 import apply_lora

            apply_lora(self, args.lora)
        self.paligemma_with_expert.set_precision(args.dtype)

    # --- inputs -------------------------------------------------------------------------------------
    @property
    def n_image_tokens(self) -> int:
        return (self.config.image_size // self.args.vision.patch_size) ** 2

    def _images(self, batch: dict, train: bool, clean_too: bool = False
                ) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor]]:
        """Per slot: (B, 3, S, S) in [-1, 1] (resized with pad, augmented in training), the (B, slots) mask of
        real images, and (if `clean_too`) each slot's un-augmented [0, 1] image with padding white (Spatial
        Forcing's teacher input) and its pixel padding mask."""
        rgb = batch["rgb"]
        B, S = rgb.shape[:2]
        size = self.config.image_size
        valid = batch.get("image_valid")
        valid = torch.ones(B, S, dtype=torch.bool, device=rgb.device) if valid is None else valid.bool()
        images, clean, pad_masks = [], [], []
        sf_on = self.args.spatial_forcing.enabled
        for s in range(self.n_slots):
            if s < S:
                img, pm = resize_with_pad(rgb[:, s].float() * 2.0 - 1.0, size, size)
            else:
                img = -torch.ones(B, 3, size, size, device=rgb.device)
                pm = torch.ones(B, size, size, dtype=torch.bool, device=rgb.device)
            if clean_too:
                c = (img / 2.0 + 0.5).clone()
                c[~pm[:, None].expand_as(c)] = 1.0
                c[(img == -1).flatten(1).all(1)] = 1.0  # an empty (black) image becomes white, as openpi-SF
                clean.append(c)
                pad_masks.append(pm)
            if train and self.args.augment:
                name = self.config.camera_names[s] if s < S else ""
                img = augment_image(img, geometric="wrist" not in name and not sf_on)
            images.append(img)
        slot_valid = torch.zeros(B, self.n_slots, dtype=torch.bool, device=rgb.device)
        slot_valid[:, :S] = valid
        return images, slot_valid, list(zip(clean, pad_masks))

    def _norm(self, key: str, x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        """openpi's Normalize / Unnormalize: z-score (x - mean) / (std + 1e-6) of every dim (norm_all_dims), or the
        stats' own rule (vla_ros stats leave the grippers, already in [0, 1], as they are)."""
        ns = self.norm_stats
        if ns is None or key not in ns.stats:
            return x
        if self.args.norm_all_dims and self.args.norm_mode == "mean_std":
            s = ns.stats[key]
            mean, std = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (s.mean, s.std))
            return x * (std + NORM_EPS) + mean if inverse else (x - mean) / (std + NORM_EPS)
        return ns.unnormalize(key, x, self.args.norm_mode) if inverse else ns.normalize(key, x, self.args.norm_mode)

    def _state(self, batch: dict) -> torch.Tensor:
        return pad_to_dim(self._norm("proprio", batch["proprio"].float()), self.args.action_dim)

    def normalize_actions(self, action: torch.Tensor) -> torch.Tensor:
        """(B, T, A, 7) raw -> (B, T, action_dim) normalised, zero-padded."""
        B, T = action.shape[:2]
        return pad_to_dim(self._norm("action", action.reshape(B, T, -1).float()), self.args.action_dim)

    def unnormalize_actions(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, action_dim) -> (B, T, A, 7) raw; grippers clamped to [0, 1]."""
        B, T = x.shape[:2]
        flat = self._norm("action", x[..., :self.config.action_dim].float(), inverse=True)
        out = flat.reshape(B, T, len(self.config.arm_names), 7)
        return torch.cat([out[..., :6], out[..., 6:].clamp(0, 1)], -1)

    # --- embeddings ---------------------------------------------------------------------------------
    def embed_prefix(self, images, slot_valid, tokens, token_mask):
        """Args: images (per slot (B, 3, S, S) in [-1, 1]), slot_valid (B, slots), tokens / token_mask (B, L).
        Returns the prefix embeddings (B, N, width), its real-token mask and its block starts (all 0: one block)."""
        pwe = self.paligemma_with_expert
        embs, pads = [], []
        for s, img in enumerate(images):
            e = pwe.embed_image(img)
            embs.append(e)
            pads.append(slot_valid[:, s:s + 1].expand(-1, e.shape[1]))
        lang = pwe.embed_language_tokens(tokens)
        embs.append(lang * math.sqrt(lang.shape[-1]))
        pads.append(token_mask)
        embs = torch.cat([e.to(embs[-1].dtype) for e in embs], 1)
        pads = torch.cat(pads, 1)
        return embs, pads, torch.zeros_like(pads)

    def embed_suffix(self, state, noisy_actions, t):
        """Args: state (B, action_dim) normalised, noisy_actions (B, H, action_dim), t (B,). Returns the suffix
        embeddings (B, 1 + H, expert width), its real-token mask and its block starts (state, first action)."""
        if self.state_proj.weight.dtype == torch.float32:
            state = state.float()
        state_emb = self.state_proj(state.to(self.state_proj.weight.dtype))[:, None]
        time_emb = sinusoidal_time_embedding(t, self.action_in_proj.out_features)
        act = self.action_in_proj(noisy_actions.to(self.action_in_proj.weight.dtype))
        x = torch.cat([act, time_emb[:, None].expand_as(act).to(act.dtype)], 2)
        x = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(x)))
        embs = torch.cat([state_emb, x], 1)
        B, H = act.shape[:2]
        pads = torch.ones(B, H + 1, dtype=torch.bool, device=embs.device)
        ar = torch.zeros(B, H + 1, dtype=torch.bool, device=embs.device)
        ar[:, :2] = True  # the state starts a block; the actions start the next
        return embs, pads, ar

    def _lm_dtype(self) -> torch.dtype:
        return self.paligemma_with_expert.language_model.layers[0].self_attn.q_proj.weight.dtype

    # --- training -----------------------------------------------------------------------------------
    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        """The training forward: flow-matching velocity for a sampled t and noise, and the prefix hidden states
        at the Spatial Forcing layer."""
        sf = self.args.spatial_forcing
        images, slot_valid, clean = self._images(batch, training, clean_too=sf.enabled)
        tokens, tmask = self.tokenizer(batch["instruction"], batch["rgb"].device)
        state = self._state(batch)
        actions = self.normalize_actions(batch["action"])
        noise = batch.get("noise")
        noise = torch.randn_like(actions) if noise is None else noise
        t = batch.get("time")
        if t is None:
            a, b = self.args.time_beta
            t = torch.distributions.Beta(torch.tensor(a), torch.tensor(b)).sample((actions.shape[0],))
            t = (t * 0.999 + 0.001).to(actions.device)
        x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * actions
        pre, pre_pad, pre_ar = self.embed_prefix(images, slot_valid, tokens, tmask)
        suf, suf_pad, suf_ar = self.embed_suffix(state, x_t, t)
        dtype = self._lm_dtype()
        pad = torch.cat([pre_pad, suf_pad], 1)
        mask = make_att_2d_masks(pad, torch.cat([pre_ar, suf_ar], 1))
        pos = torch.cumsum(pad.long(), 1) - 1
        (_, out), _, hidden = self.paligemma_with_expert(
            [pre.to(dtype), suf.to(dtype)], mask, pos, hidden_layer=sf.align_layer if sf.enabled else None)
        v_t = self.action_out_proj(out[:, -actions.shape[1]:].float())
        return {"action_hidden": out, "v_t": v_t, "u_t": noise - actions, "hidden": hidden,
                "slot_valid": slot_valid, "clean": clean}

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        feats = self.encode(batch, (), training=self.training)
        err = F.mse_loss(feats["v_t"], feats["u_t"], reduction="none").mean(-1)  # (B, T)
        keep = torch.ones_like(err, dtype=torch.bool)
        if self.args.mask_padded_steps and "action_pad" in batch:
            keep = ~batch["action_pad"].bool()
        loss = (err * keep).sum() / keep.sum().clamp(min=1)
        metrics = {"action_loss": float(loss.detach())}
        total = loss
        if self.args.spatial_forcing.enabled:
            from vla_ros.policies.pi0.alignment_pi0 import alignment_loss

            align = alignment_loss(self, feats)
            total = loss + self.args.spatial_forcing.alpha * align
            metrics["align_loss"] = float(align.detach())
        metrics["loss"] = float(total.detach())
        return total, metrics

    # --- inference ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_actions(self, batch: dict, noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, horizon, action_dim) normalised actions: the prefix KV cache, then num_steps Euler steps."""
        images, slot_valid, _ = self._images(batch, False)
        tokens, tmask = self.tokenizer(batch["instruction"], batch["rgb"].device)
        state = self._state(batch)
        B = state.shape[0]
        if noise is None:
            noise = torch.randn(B, self.config.horizon, self.args.action_dim, device=state.device)
        dtype = self._lm_dtype()
        pre, pre_pad, pre_ar = self.embed_prefix(images, slot_valid, tokens, tmask)
        pre_mask = make_att_2d_masks(pre_pad, pre_ar)
        _, cache, _ = self.paligemma_with_expert([pre.to(dtype), None], pre_mask, torch.cumsum(pre_pad.long(), 1) - 1,
                                                 use_cache=True)
        n = self.args.num_steps
        dt = torch.tensor(-1.0 / n, device=state.device)
        x_t, t = noise.float(), torch.tensor(1.0, device=state.device)
        while t >= -dt / 2:
            suf, suf_pad, suf_ar = self.embed_suffix(state, x_t, t.expand(B))
            L = suf.shape[1]
            mask = torch.cat([pre_pad[:, None].expand(B, L, -1), make_att_2d_masks(suf_pad, suf_ar)], 2)
            pos = pre_pad.long().sum(-1, keepdim=True) + torch.cumsum(suf_pad.long(), 1) - 1
            (_, out), _, _ = self.paligemma_with_expert([None, suf.to(dtype)], mask, pos, past_kv=cache)
            v_t = self.action_out_proj(out[:, -x_t.shape[1]:].float())
            x_t = x_t + dt * v_t
            t = t + dt
        return x_t

    def predict_actions(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        return self.unnormalize_actions(self.sample_actions(batch, batch.get("noise")))
