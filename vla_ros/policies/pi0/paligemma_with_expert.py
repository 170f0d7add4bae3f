"""PaliGemma (SigLIP + Gemma) and the Gemma action expert sharing every attention layer, with the module names of
openpi's `PaliGemmaWithExpertModel` (so state-dict keys are the converter's: `paligemma.model.vision_tower.
vision_model.*`, `paligemma.model.multi_modal_projector.linear.*`, `paligemma.model.language_model.*`,
`gemma_expert.model.*`). Built from transformers' own SigLIP, PaliGemma projector and Gemma classes.

Each layer: every stack RMS-normalises its own tokens and projects its own q, k, v; the keys and values of both
stacks are concatenated and one (masked) attention runs over prefix + suffix; each stack applies its own o_proj,
residual, RMSNorm and MLP. RoPE uses the joint position ids. A prefix-only pass can return its per-layer (k, v)
(the KV cache); a suffix-only pass attends to it.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import GemmaConfig, GemmaModel, PaliGemmaConfig, SiglipVisionConfig, SiglipVisionModel
from transformers.models.gemma.modeling_gemma import GemmaRotaryEmbedding, apply_rotary_pos_emb
from transformers.models.paligemma.modeling_paligemma import PaliGemmaMultiModalProjector

from vla_ros.policies.pi0.configuration_pi0 import GemmaWidths, Pi0Config

MASK_VALUE = -2.3819763e38  # openpi's additive mask value
KEEP_FLOAT32 = ("vision_tower.vision_model.embeddings.patch_embedding.weight",
                "vision_tower.vision_model.embeddings.patch_embedding.bias",
                "vision_tower.vision_model.embeddings.position_embedding.weight",
                "input_layernorm", "post_attention_layernorm", "model.norm")  # openpi's float32 params in bf16


def gemma_config(w: GemmaWidths, vocab_size: int, specials: bool = True) -> GemmaConfig:
    """`specials=False`: no BOS/EOS/PAD ids (the expert has no vocabulary of its own)."""
    extra = {} if specials else {"bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
    return GemmaConfig(hidden_size=w.width, num_hidden_layers=w.depth, intermediate_size=w.mlp_dim,
                       num_attention_heads=w.num_heads, num_key_value_heads=w.num_kv_heads, head_dim=w.head_dim,
                       vocab_size=vocab_size, hidden_act="gelu_pytorch_tanh", **extra)


def siglip_config(args: Pi0Config, image_size: int) -> SiglipVisionConfig:
    v = args.vision
    return SiglipVisionConfig(hidden_size=v.hidden_size, num_hidden_layers=v.num_hidden_layers,
                              num_attention_heads=v.num_attention_heads, intermediate_size=v.intermediate_size,
                              patch_size=v.patch_size, image_size=image_size, vision_use_head=False,
                              projection_dim=args.paligemma.width)


class _VisionTower(nn.Module):
    """transformers 4.x's SiglipVisionModel nesting (`vision_model.*`), which openpi's checkpoints carry."""

    def __init__(self, config: SiglipVisionConfig):
        super().__init__()
        model = SiglipVisionModel(config)
        self.vision_model = getattr(model, "vision_model", model)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision_model(pixel_values=pixel_values).last_hidden_state


class _PaliGemmaModel(nn.Module):
    def __init__(self, args: Pi0Config, image_size: int):
        super().__init__()
        vcfg = siglip_config(args, image_size)
        self.vision_tower = _VisionTower(vcfg)
        pcfg = PaliGemmaConfig(vision_config=vcfg.to_dict(), projection_dim=args.paligemma.width,
                               text_config=gemma_config(args.paligemma, args.vocab_size).to_dict())
        self.multi_modal_projector = PaliGemmaMultiModalProjector(pcfg)
        self.language_model = GemmaModel(gemma_config(args.paligemma, args.vocab_size))


class _PaliGemma(nn.Module):
    def __init__(self, args: Pi0Config, image_size: int):
        super().__init__()
        self.model = _PaliGemmaModel(args, image_size)


class _Expert(nn.Module):
    def __init__(self, args: Pi0Config):
        super().__init__()
        self.model = GemmaModel(gemma_config(args.action_expert, 1, specials=False))
        self.model.embed_tokens = None  # the expert reads embeddings only, as in openpi


class PaliGemmaWithExpert(nn.Module):
    def __init__(self, args: Pi0Config, image_size: int):
        super().__init__()
        self.paligemma = _PaliGemma(args, image_size)
        self.gemma_expert = _Expert(args)
        self._cast_hook = self.paligemma.model.vision_tower.vision_model.encoder.register_forward_pre_hook(
            self._encoder_dtype, with_kwargs=True)

    @staticmethod
    def _encoder_dtype(module, args, kwargs):
        """openpi feeds the SigLIP encoder in its weights' dtype (float32 embeddings -> bf16 layers)."""
        dtype = module.layers[0].self_attn.q_proj.weight.dtype if len(module.layers) else None
        if args:
            args = (args[0].to(dtype) if dtype is not None else args[0],) + tuple(args[1:])
        elif "inputs_embeds" in kwargs and dtype is not None:
            kwargs = dict(kwargs, inputs_embeds=kwargs["inputs_embeds"].to(dtype))
        return args, kwargs

    @property
    def language_model(self) -> GemmaModel:
        return self.paligemma.model.language_model

    def set_precision(self, dtype: str) -> None:
        """float32, or openpi's bfloat16 with the KEEP_FLOAT32 parameters in float32."""
        if dtype == "float32":
            self.to(torch.float32)
            return
        self.to(torch.bfloat16)
        for name, p in self.named_parameters():
            if any(s in name for s in KEEP_FLOAT32):
                p.data = p.data.to(torch.float32)

    def embed_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, P, width): SigLIP's last hidden state through the projector (unscaled,
        as openpi's PaliGemma; transformers' own `get_image_features` would divide by sqrt(width))."""
        tower = self.paligemma.model.vision_tower
        dtype = tower.vision_model.embeddings.patch_embedding.weight.dtype
        return self.paligemma.model.multi_modal_projector(tower(pixel_values.to(dtype)))

    def embed_language_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Plain embedding lookup (openpi scales by sqrt(width) itself; transformers' Gemma embedding would too)."""
        return nn.functional.embedding(tokens, self.language_model.embed_tokens.weight)

    def forward(self, embeds: list[torch.Tensor | None], att_mask: torch.Tensor, position_ids: torch.Tensor,
                past_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None, use_cache: bool = False,
                hidden_layer: int | None = None):
        """embeds [prefix (B, Lp, Wp) | None, suffix (B, Ls, We) | None]; att_mask (B, Lq, Lk) bool over the
        keys (past keys first); position_ids (B, Lq). Returns (outputs per stack after the final norm,
        the per-layer (k, v) cache if use_cache, the prefix hidden state entering layer `hidden_layer`
        (== depth: the final normed output) or None)."""
        models = [self.paligemma.model.language_model, self.gemma_expert.model]
        active = [i for i, e in enumerate(embeds) if e is not None]
        xs = {i: embeds[i] for i in active}
        first = self.paligemma.model.language_model.layers[0].self_attn
        heads, head_dim = first.config.num_attention_heads, first.head_dim
        bias = torch.where(att_mask[:, None], 0.0, MASK_VALUE)
        ref = xs[active[0]]
        cos, sin = self._rotary()(ref, position_ids)
        cache, hidden = [], None
        for layer_idx in range(len(models[0].layers)):
            if hidden_layer == layer_idx and 0 in xs:
                hidden = xs[0]
            qs, ks, vs, lens = [], [], [], []
            for i in active:
                layer = models[i].layers[layer_idx]
                h = layer.input_layernorm(xs[i])
                shape = (*h.shape[:-1], -1, head_dim)
                qs.append(layer.self_attn.q_proj(h).view(shape).transpose(1, 2))
                ks.append(layer.self_attn.k_proj(h).view(shape).transpose(1, 2))
                vs.append(layer.self_attn.v_proj(h).view(shape).transpose(1, 2))
                lens.append(h.shape[1])
            q, k, v = torch.cat(qs, 2), torch.cat(ks, 2), torch.cat(vs, 2)
            q, k = apply_rotary_pos_emb(q, k, cos.to(q.dtype), sin.to(q.dtype), unsqueeze_dim=1)
            if use_cache:
                cache.append((k, v))
            if past_kv is not None:
                k = torch.cat([past_kv[layer_idx][0].to(k.dtype), k], 2)
                v = torch.cat([past_kv[layer_idx][1].to(v.dtype), v], 2)
            att = self._attention(q, k, v, bias, heads, head_dim)
            start = 0
            for i, n in zip(active, lens):
                layer = models[i].layers[layer_idx]
                a = att[:, start:start + n]
                start += n
                out = layer.self_attn.o_proj(a.to(layer.self_attn.o_proj.weight.dtype))
                x = xs[i] + out
                h = layer.post_attention_layernorm(x)
                xs[i] = x + layer.mlp(h.to(layer.mlp.up_proj.weight.dtype))
        outs = [models[i].norm(xs[i]) if i in xs else None for i in range(2)]
        if hidden_layer is not None and hidden_layer >= len(models[0].layers) and outs[0] is not None:
            hidden = outs[0]
        return outs, (cache if use_cache else None), hidden

    def _rotary(self) -> GemmaRotaryEmbedding:
        return self.paligemma.model.language_model.rotary_emb

    @staticmethod
    def _attention(q, k, v, bias, heads: int, head_dim: int) -> torch.Tensor:
        """openpi's eager attention: grouped k/v repeated to the query heads, scores * head_dim^-0.5 + mask,
        softmax in float32. -> (B, Lq, heads * head_dim)."""
        groups = q.shape[1] // k.shape[1]
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * head_dim ** -0.5 + bias
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2)
        return out.reshape(out.shape[0], out.shape[1], heads * head_dim)
