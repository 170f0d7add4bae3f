"""Paper-scale VLM backbone: a PaliGemma-class model (SigLIP vision tower + projector + Gemma) from a LOCAL
folder (`local_files_only=True`; nothing is fetched from a hub). The VLA sequence is [image tokens of every
camera, instruction tokens, proprio token, learned action token]; the Gemma hidden states of every layer are
returned like the tiny backbone's, so FALCON, Spatial Forcing and SpatialVLA run on it unchanged.

A folder with only config.json builds the architecture with random weights (on the meta device this counts
parameters without allocating them); a folder with weights loads them.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.policies.backbones.tiny_vlm import HashTokenizer
from vla_ros.policies.config import VLMConfig

SIGLIP_MEAN, SIGLIP_STD = 0.5, 0.5


def load_hf_vlm(path: str | Path, load_weights: bool = True):
    from transformers import AutoConfig, PaliGemmaForConditionalGeneration

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"vlm.path: {path} has no config.json (a local PaliGemma-class model folder)")
    cfg = AutoConfig.from_pretrained(path, local_files_only=True)
    if cfg.model_type != "paligemma":
        raise ValueError(f"vlm.path: {path} holds a {cfg.model_type!r} model; this backbone expects paligemma")
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    if has_weights and load_weights:
        return PaliGemmaForConditionalGeneration.from_pretrained(path, local_files_only=True), cfg
    return PaliGemmaForConditionalGeneration(cfg), cfg


class HFVLM(nn.Module):
    def __init__(self, cfg: VLMConfig, n_cameras: int, image_size: int, proprio_dim: int, load_weights: bool = True):
        super().__init__()
        self.cfg = cfg
        self.model, hf_cfg = load_hf_vlm(cfg.path, load_weights)
        self.width_ = hf_cfg.text_config.hidden_size
        self.vision_size = hf_cfg.vision_config.image_size
        patch = hf_cfg.vision_config.patch_size
        self.grid = self.vision_size // patch
        self.n_vision = n_cameras * self.grid * self.grid
        self.tokenizer = self._tokenizer(cfg.path, hf_cfg.text_config.vocab_size)
        self.proprio_embed = nn.Linear(proprio_dim, self.width_)
        self.action_token = nn.Parameter(torch.zeros(1, 1, self.width_))

    def _tokenizer(self, path: str, vocab: int):
        p = Path(path)
        if (p / "tokenizer.json").exists() or (p / "tokenizer.model").exists():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
            n = self.cfg.max_text_tokens
            return lambda texts: tok(texts, padding="max_length", truncation=True, max_length=n,
                                     return_tensors="pt")["input_ids"]
        return HashTokenizer(vocab, self.cfg.max_text_tokens)

    @property
    def width(self) -> int:
        return self.width_

    def vision_tokens(self, rgb: torch.Tensor) -> torch.Tensor:
        B, N = rgb.shape[:2]
        x = rgb.flatten(0, 1)
        if x.shape[-1] != self.vision_size:
            x = F.interpolate(x, size=(self.vision_size, self.vision_size), mode="bilinear", align_corners=False)
        feats = self.model.model.vision_tower(pixel_values=(x - SIGLIP_MEAN) / SIGLIP_STD).last_hidden_state
        feats = self.model.model.multi_modal_projector(feats)
        return feats.reshape(B, N * feats.shape[1], -1) / math.sqrt(self.width_)  # Gemma rescales embeddings

    def forward(self, rgb, instruction, proprio, vision_add=None) -> dict:
        vis = self.vision_tokens(rgb)
        if vision_add is not None:
            vis = vis + vision_add
        ids = self.tokenizer(instruction).to(rgb.device)
        emb = self.model.get_input_embeddings()
        txt = emb(ids.clamp(max=emb.num_embeddings - 1))
        B = rgb.shape[0]
        x = torch.cat([vis, txt, self.proprio_embed(proprio)[:, None], self.action_token.expand(B, -1, -1)], 1)
        mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        out = self.model.model.language_model(inputs_embeds=x.to(emb.weight.dtype), attention_mask=mask,
                                              output_hidden_states=True)
        hidden = list(out.hidden_states)
        return {"hidden_states": hidden, "action_hidden": hidden[-1][:, -1], "vision_span": (0, self.n_vision)}
