"""SpatialVLA as released (SpatialVLA/SpatialVLA `model/modeling_spatialvla.py`, SimplerEnv's inference), built
from transformers' SiglipVisionModel, Gemma2ForCausalLM and ZoeDepthForDepthEstimation. The module attribute names
are the reference's, so the state dict (in the released naming, see `layout_spatialvla`) is the checkpoint's.

Inference: SigLIP((rgb - 0.5) / 0.5) + Ego3D(ZoeDepth depth, K) -> multi_modal_projector -> / sqrt(hidden); the
prompt "<image> x 256 <bos> instruction NL" embedded (spatial_embed_tokens at action ids, image features at <image>),
scaled by sqrt(hidden); Gemma2 with the prefix-LM mask (the prompt attends bidirectionally), positions from 1;
greedy decoding of action_chunk_size * 3 tokens -> action grids -> q01/q99 un-normalisation.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation
from torch import nn
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    SiglipVisionConfig,
    SiglipVisionModel,
    ZoeDepthConfig,
    ZoeDepthForDepthEstimation,
)
from transformers.cache_utils import DynamicCache

from vla_ros.core.config import ConfigError, from_dict
from vla_ros.core.constants import MOD_DEPTH, MOD_RGB
from vla_ros.core.types import Observation
from vla_ros.policies.base import Policy
from vla_ros.policies.factory import register_policy
from vla_ros.policies.processing import observation_to_batch
from vla_ros.policies.spatialvla.configuration_spatialvla import SpatialVLAConfig
from vla_ros.policies.spatialvla.ego3d_spatialvla import (
    Ego3DPositionEmbeddingMLP,
    backproject_patch,
    subpatch_pixels,
)
from vla_ros.policies.spatialvla.processing_spatialvla import (
    EOS_TOKEN,
    ActionEnsembler,
    SpatialActionGrid,
    SpatialVLAInputError,
    action_stats,
    build_prompt,
    dataset_statistics,
    gaussian_bin_policy,
    gaussian_params,
    normalize,
    reference_actions,
    unnormalize,
    zoe_postprocess,
    zoe_preprocess,
)
from vla_ros.policies.spatialvla.tokenizer_spatialvla import (
    check_token_ids,
    load_text_tokenizer,
    tiny_text_tokenizer,
)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def sub_configs(model: dict) -> tuple[SiglipVisionConfig, Gemma2Config, ZoeDepthConfig]:
    """The released config.json's vision_config, text_config and vision_zoe_config as transformers configs
    (Gemma2 with eager attention: the reference's, the only one applying Gemma2's logit soft-capping)."""
    def strip(d: dict) -> dict:
        return {k: v for k, v in d.items() if k != "model_type"}

    vision = SiglipVisionConfig(**strip(model["vision_config"]))
    # the released lm_head is its own weight (untied), whatever a saved text_config says
    text = Gemma2Config(**{**strip(model["text_config"]), "tie_word_embeddings": False}, attn_implementation="eager")
    zoe = ZoeDepthConfig(**strip(model["vision_zoe_config"]))
    return vision, text, zoe


class SpatialVLAMultiModalProjector(nn.Module):
    def __init__(self, vision_hidden: int, projection_dim: int):
        super().__init__()
        self.linear = nn.Linear(vision_hidden, projection_dim, bias=True)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.linear(image_features)


@register_policy
class SpatialVLAPolicy(Policy):
    method = "spatialvla"
    INPUTS = (MOD_RGB,)
    TINY_ARGS: dict = {}  # the SpatialVLAConfig defaults are the tiny widths
    TINY_POLICY = {"image_size": 224}  # tiny_model_config's SigLIP input (patch 14, as released)
    READS_PROPRIO = False
    FITTED_ARGS = ("statistics", "bin_policy")  # fitted to the training data (fit_tokenizer)

    def __init__(self, config, norm_stats=None, external_weights: bool = True):
        super().__init__(config, norm_stats, external_weights)
        self.args = args = from_dict(SpatialVLAConfig, config.method_args, "method_args")
        m = args.model
        vision, text, zoe = sub_configs(m)
        if config.image_size != vision.image_size:
            raise ConfigError(f"image_size: {config.image_size} != model.vision_config.image_size {vision.image_size}")
        if config.horizon != args.action_chunk_size:
            raise ConfigError(f"horizon: {config.horizon} != method_args.action_chunk_size {args.action_chunk_size} "
                              "(the steps the model generates and is trained on)")
        self.vision_tower = SiglipVisionModel(vision)
        self.multi_modal_projector = SpatialVLAMultiModalProjector(vision.hidden_size,
                                                                   m.get("projection_dim", text.hidden_size))
        self.language_model = Gemma2ForCausalLM(text)
        self.use_zoe = bool(m.get("use_vision_zoe", True))
        self.reso = int(m.get("ego3d_patch_reso", 2))
        if self.use_zoe:
            self.vision_zoe_model = ZoeDepthForDepthEstimation(zoe)
            self.position_embedding_3d = Ego3DPositionEmbeddingMLP(self.reso ** 2 * 3, vision.hidden_size,
                                                                   int(m.get("n_freqs", 8)))
            self.register_buffer("uv_h", subpatch_pixels(vision.image_size, vision.patch_size, self.reso),
                                 persistent=False)
        self.use_spatial_token = bool(m.get("use_spatial_token", True))
        if self.use_spatial_token:
            self.spatial_embed_tokens = nn.Embedding(m["spatial_token_num"], text.hidden_size)
        self.patch_size, self.image_size, self.text_hidden = vision.patch_size, vision.image_size, text.hidden_size
        self.n_image_tokens = (vision.image_size // vision.patch_size) ** 2
        self.image_token_index, self.action_begin = m["image_token_index"], m["action_token_begin_idx"]
        self.action_grid = SpatialActionGrid(args.bin_policy, args.num_bins, args.use_spherical)
        n_act = m["spatial_token_num"]
        if args.tokenizer_file:
            self.tokenizer = load_text_tokenizer(args.tokenizer_file)
        else:
            self.tokenizer = tiny_text_tokenizer(self.image_token_index, n_act)
        check_token_ids(self.tokenizer, self.image_token_index, self.action_begin, n_act,
                        args.tokenizer_file or "tiny tokenizer")
        self.eos_id = self.tokenizer.token_to_id(EOS_TOKEN)
        self.unnorm_key = args.unnorm_key or (next(iter(args.statistics)) if len(args.statistics) == 1 else "")
        self.stats = action_stats(args.statistics, self.unnorm_key) if args.statistics else None
        self.INPUTS = (MOD_RGB, MOD_DEPTH) if args.depth_source == "sensor" else (MOD_RGB,)
        self.ensembler = ActionEnsembler(args.ensemble_horizon, args.ensemble_temp)

    # --- pieces of the reference forward ------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.multi_modal_projector.linear.weight.dtype

    def checkpoint_K(self, batch_size: int, device, key: str | None = None) -> torch.Tensor:
        """The processor's K for `key` (default unnorm_key; else 'default'), rescaled to the model image size."""
        ic = self.args.intrinsic_config
        entry = ic.get(self.unnorm_key if key is None else key, ic.get("default"))
        K = torch.tensor(entry["intrinsic"], dtype=torch.float32)
        K[:2] *= torch.tensor([self.image_size / entry["width"], self.image_size / entry["height"]])[:, None]
        return K.to(device)[None].expand(batch_size, 3, 3)

    def estimate_depth(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 1, H, W) ZoeDepth metric depth, with the reference pre/post-processing."""
        with torch.no_grad():
            depth = self.vision_zoe_model(pixel_values=zoe_preprocess(pixel_values)).predicted_depth
            return zoe_postprocess(depth, *pixel_values.shape[-2:])

    def sensor_depth(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor | None:
        """(B, 1, H, W) depth of the first camera when `depth_source: sensor`, depth is among `modalities` and every
        element has some valid depth; None = ZoeDepth estimates it."""
        if MOD_DEPTH in modalities and MOD_DEPTH in self.INPUTS and "depth_m" in batch and \
                bool(batch["depth_valid"].flatten(1).any(1).all()):
            return batch["depth_m"][:, :1]
        return None

    def image_features(self, pixel_values: torch.Tensor, K: torch.Tensor,
                       depth: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1], K (B, 3, 3) -> (B, n_image_tokens, text hidden) / sqrt(text hidden)."""
        pv = pixel_values.to(self.dtype)
        feats = self.vision_tower(pixel_values=(pv - 0.5) / 0.5).last_hidden_state
        if self.use_zoe:
            with torch.no_grad():
                depth = self.estimate_depth(pv) if depth is None else depth.to(self.dtype)
                # K and the pixel grid pass through the model dtype, as in the reference's bf16 model
                xyz = backproject_patch(K.to(self.dtype), depth, self.uv_h.to(self.dtype), self.patch_size,
                                        self.reso)
            feats = feats + self.position_embedding_3d(xyz)
        return self.multi_modal_projector(feats) / (self.text_hidden ** 0.5)

    def embed(self, ids: torch.Tensor, image_feats: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with spatial_embed_tokens at action ids and image features at <image>, scaled by
        sqrt(hidden) (Gemma's normaliser, applied to every input embedding as the reference)."""
        emb = F.embedding(ids, self.language_model.model.embed_tokens.weight)
        if self.use_spatial_token:
            sel = (ids >= self.action_begin) & (ids < self.action_begin + self.spatial_embed_tokens.num_embeddings)
            emb[sel] = self.spatial_embed_tokens(ids[sel] - self.action_begin).to(emb.dtype)
        if image_feats is not None:
            mask = (ids == self.image_token_index).unsqueeze(-1).expand_as(emb)
            if int(mask.sum()) != image_feats.numel():
                raise SpatialVLAInputError(f"{int(mask[..., 0].sum())} <image> tokens in the prompt for "
                                           f"{image_feats.shape[0] * image_feats.shape[1]} image features")
            emb = emb.masked_scatter(mask, image_feats.to(emb.dtype))
        return emb * torch.tensor(self.text_hidden ** 0.5, dtype=emb.dtype)

    def attention_masks(self, batch: int, q_start: int, q_len: int, device) -> dict:
        """Additive masks for queries at positions q_start.. over keys 0..q_start+q_len-1: the prompt (prefill)
        attends bidirectionally, later tokens causally; sliding layers also drop keys >= sliding_window behind."""
        cfg = self.language_model.config
        q = torch.arange(q_start, q_start + q_len, device=device)[:, None]
        k = torch.arange(q_start + q_len, device=device)[None]
        blocked = (k > q) & (q_start > 0)
        low = torch.finfo(self.dtype).min
        full = torch.zeros(q.shape[0], k.shape[1], dtype=self.dtype, device=device).masked_fill(blocked, low)
        sliding = full.masked_fill(k <= q - cfg.sliding_window, low)
        return {"full_attention": full.expand(batch, 1, -1, -1), "sliding_attention": sliding.expand(batch, 1, -1, -1)}

    def prompt_ids(self, instructions: list[str], device) -> torch.Tensor:
        ids = [self.tokenizer.encode(build_prompt(t, self.n_image_tokens), add_special_tokens=False).ids
               for t in instructions]
        if len({len(i) for i in ids}) != 1:
            raise SpatialVLAInputError("instructions of one batch must tokenize to the same length")
        return torch.tensor(ids, dtype=torch.long, device=device)

    # --- the policy interface -----------------------------------------------------------------------------
    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        """Prefill: the prompt through Gemma2; returns the last position's logits and hidden state, the cache."""
        rgb = batch["rgb"][:, 0]
        B, device = rgb.shape[0], rgb.device
        K = batch["K"][:, 0] if self.args.intrinsics_source == "camera_info" else self.checkpoint_K(B, device)
        ids = self.prompt_ids(batch["instruction"], device)
        emb = self.embed(ids, self.image_features(rgb, K, self.sensor_depth(batch, modalities)))
        L = ids.shape[1]
        cache = DynamicCache()
        pos = torch.arange(1, L + 1, device=device)[None].expand(B, -1)
        out = self.language_model(inputs_embeds=emb, attention_mask=self.attention_masks(B, 0, L, device),
                                  position_ids=pos, past_key_values=cache, use_cache=True, logits_to_keep=1,
                                  output_hidden_states=True)
        return {"logits": out.logits[:, -1], "action_hidden": out.hidden_states[-1][:, -1], "cache": cache,
                "length": L}

    def generate_action_tokens(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        """Greedy: (B, action_chunk_size * 3) token ids. After an <eos> the reference stops and pads with id 0."""
        feats = self.encode(batch, modalities)
        logits, cache, L = feats["logits"], feats["cache"], feats["length"]
        B, device = logits.shape[0], logits.device
        n = self.args.action_chunk_size * 3
        slots = self.action_grid.slot_ranges()
        out, done = [], torch.zeros(B, dtype=torch.bool, device=device)
        for t in range(n):
            logits = logits.float()
            if self.args.constrain_action_tokens:
                lo, hi = slots[t % 3]
                keep = torch.zeros_like(logits, dtype=torch.bool)
                keep[:, self.action_begin + lo: self.action_begin + hi] = True
                logits = logits.masked_fill(~keep, float("-inf"))
            nxt = logits.argmax(-1)
            out.append(torch.where(done, torch.zeros_like(nxt), nxt))
            done = done | (nxt == self.eos_id)
            if t == n - 1 or bool(done.all()):
                continue
            pos = torch.full((B, 1), L + t + 1, device=device)
            res = self.language_model(inputs_embeds=self.embed(nxt[:, None]), position_ids=pos,
                                      attention_mask=self.attention_masks(B, L + t, 1, device),
                                      past_key_values=cache, use_cache=True, logits_to_keep=1)
            logits = res.logits[:, -1]
        return torch.stack(out, 1)

    def decode_tokens(self, tokens: torch.Tensor) -> np.ndarray:
        """(B, n * 3) ids -> (B, n, 7) raw actions (reference units: delta xyz, roll/pitch/yaw, gripper)."""
        if self.stats is None:
            raise SpatialVLAInputError(f"unnorm_key {self.args.unnorm_key!r}: no statistics to un-normalise with; "
                                       f"available: {sorted(self.args.statistics)}")
        B = tokens.shape[0]
        norm = self.action_grid.decode(tokens.cpu().numpy().reshape(-1, 3) - self.action_begin)
        return unnormalize(norm, self.stats).reshape(B, -1, 7)

    @torch.no_grad()
    def predict_actions(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        """(B, T, 1, 7) raw reference actions."""
        actions = self.decode_tokens(self.generate_action_tokens(batch, modalities))
        return torch.as_tensor(actions, dtype=torch.float32)[:, :, None]

    def fit_tokenizer(self, actions: np.ndarray) -> None:
        """Training from a dataset: the processor statistics of its actions ((N, T*7) vla_ros actions) under
        unnorm_key (default 'train') and, as the reference's pretraining, bin edges from the Gaussians of the
        normalised actions with sigma at least min_sigma. Both land in method_args, so the checkpoint describes
        itself."""
        raw = reference_actions(np.asarray(actions, np.float64).reshape(-1, 7))
        key = self.args.unnorm_key or "train"
        stats = {key: dataset_statistics(raw)}
        bins = gaussian_bin_policy(gaussian_params(normalize(raw, stats[key]["action"])), self.args.num_bins,
                                   self.args.min_sigma)
        for name, value in (("statistics", stats), ("unnorm_key", key), ("bin_policy", bins)):
            setattr(self.args, name, value)
            self.config.method_args[name] = value
        self.unnorm_key, self.stats = key, action_stats(stats, key)
        self.action_grid = SpatialActionGrid(bins, self.args.num_bins, self.args.use_spherical)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """The reference's next-token loss on the action suffix (see loss_spatialvla)."""
        from vla_ros.policies.spatialvla.loss_spatialvla import reference_loss

        return reference_loss(self, batch)

    def reset(self) -> None:
        self.ensembler.reset()

    def observation_to_batch(self, obs: Observation) -> dict:
        """SpatialVLA reads no proprio: the observation's joint vector is passed through unread."""
        return observation_to_batch(obs, self.config.camera_names, self.config.image_size,
                                    int(np.asarray(obs.proprio).size), self.device, [])

    def postprocess(self, actions: np.ndarray, obs: Observation) -> np.ndarray:
        """(T, 1, 7) raw [dxyz, roll, pitch, yaw, gripper] -> the steps to publish as [dxyz, rotation vector,
        gripper]: SimplerEnv's ensembler (one step, gripper at 0.5) or the first execute_steps steps."""
        a = np.asarray(actions, np.float64)[:, 0]
        if self.args.ensemble == "simpler":
            step = self.ensembler(a)
            step[6] = float(step[6] > 0.5)
            a = step[None]
        elif self.args.execute_steps:
            a = a[: self.args.execute_steps]
        rotvec = Rotation.from_euler("xyz", a[:, 3:6]).as_rotvec()  # extrinsic x-y-z = transforms3d 'sxyz'
        return np.concatenate([a[:, :3], rotvec, a[:, 6:7]], 1)[:, None]
