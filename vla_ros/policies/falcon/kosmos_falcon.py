"""Kosmos-2 as FALCON (RoboVLMs `RoboKosMos`) uses it: transformers' Kosmos2ForConditionalGeneration, images
encoded on their own (vision tower -> post_layernorm on every token -> L2 normalise -> image_to_text_projection,
64 latent tokens), spliced into the prompt's embeddings after BOS; a learned action token goes before the last
token (EOS); the text transformer runs on the embeddings; the action token's last hidden state (after the
final layer norm) is returned.

FALCON's patched modeling_kosmos2.py only lets the forward run without pixel_values (text tower on
inputs_embeds); calling `text_model.model` directly is the same computation without the unused LM head.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.core.config import ConfigError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


class Kosmos2FolderError(ValueError):
    """A Kosmos-2 folder is missing, of another model type, or lacks the files asked for; the message names them."""


def read_kosmos2_config(path: str | Path):
    """The Kosmos2Config of a local Kosmos-2 folder (config.json with model_type "kosmos-2")."""
    from transformers import Kosmos2Config

    p = Path(path)
    cfg_file = p / "config.json"
    if not cfg_file.is_file():
        raise Kosmos2FolderError(f"{p}: no config.json (a local Kosmos-2 folder, e.g. kosmos-2-patch14-224; "
                                 "nothing is downloaded)")
    model_type = json.loads(cfg_file.read_text()).get("model_type")
    if model_type != "kosmos-2":
        raise Kosmos2FolderError(f"{cfg_file}: model_type is {model_type!r}; FALCON's backbone is 'kosmos-2'")
    return Kosmos2Config.from_pretrained(str(p), local_files_only=True)


def build_kosmos2(path: str | Path, load_weights: bool) -> nn.Module:
    """Kosmos2ForConditionalGeneration from a local folder: its weights (every key present, or a named error)
    when `load_weights`, else randomly initialised from config.json (a checkpoint supplies the weights)."""
    from transformers import Kosmos2ForConditionalGeneration

    cfg = read_kosmos2_config(path)
    if not load_weights:
        return Kosmos2ForConditionalGeneration(cfg)
    present = [f for f in WEIGHT_FILES if (Path(path) / f).is_file()]
    if not present:
        raise Kosmos2FolderError(f"{path}: no weights ({' / '.join(WEIGHT_FILES)}); a Kosmos-2 folder with "
                                 "config.json only can serve a FALCON checkpoint, not start training")
    model, info = Kosmos2ForConditionalGeneration.from_pretrained(str(path), local_files_only=True,
                                                                  output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("lm_head.weight")]  # tied to embed_tokens
    bad = {"missing": missing, "unexpected": list(info.get("unexpected_keys", [])),
           "mismatched": [str(m) for m in info.get("mismatched_keys", [])]}
    if any(bad.values()):
        raise Kosmos2FolderError(f"{path}: weights do not fit Kosmos-2: " +
                                 "; ".join(f"{k} {v[:8]}" for k, v in bad.items() if v))
    return model


INLINE_KEYS = ("text_config", "vision_config", "latent_query_num")
BYTE_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<grounding>")  # Kosmos-2's ids 0-3, then its grounding token


def inline_kosmos2_config(spec: dict, image_size: int, patch_size: int):
    """Kosmos2Config from transformers' own arguments (method_args.reference.kosmos2): text_config and
    vision_config dicts and latent_query_num; the vision tower's image_size / patch_size default to the policy's
    (given, they must equal them). An unknown key is named."""
    from transformers import Kosmos2Config, Kosmos2TextConfig, Kosmos2VisionConfig

    where = "method_args.reference.kosmos2"
    unknown = sorted(set(spec) - set(INLINE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown {unknown}; expected {list(INLINE_KEYS)}")
    for name, cls in (("text_config", Kosmos2TextConfig), ("vision_config", Kosmos2VisionConfig)):
        sub = spec.get(name, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{where}.{name}: expected a mapping, got {sub!r}")
        bad = sorted(set(sub) - set(cls().to_dict()))
        if bad:
            raise ConfigError(f"{where}.{name}: unknown {bad} (transformers' {cls.__name__} arguments)")
    vision = {"image_size": image_size, "patch_size": patch_size, **spec.get("vision_config", {})}
    for key, want in (("image_size", image_size), ("patch_size", patch_size)):
        if vision[key] != want:
            raise ConfigError(f"{where}.vision_config.{key}: {vision[key]}, but the policy's is {want} "
                              f"({'image_size' if key == 'image_size' else 'vlm.patch_size'})")
    return Kosmos2Config(text_config=dict(spec.get("text_config", {})), vision_config=vision,
                         latent_query_num=int(spec.get("latent_query_num", 64)))


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """(grid * grid, dim) 2-D sine-cosine position code (MAE's): a quarter of the channels each for sin x, cos x,
    sin y, cos y at geometric frequencies; channels beyond 4 * (dim // 4) are zero."""
    q = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(q, dtype=torch.float64) / max(q, 1))
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    parts = []
    for coord in (xs, ys):
        angle = coord.flatten()[:, None].double() * omega[None]
        parts += [angle.sin(), angle.cos()]
    out = torch.zeros(grid * grid, dim, dtype=torch.float64)
    out[:, :4 * q] = torch.cat(parts, 1)
    return out.float()


# The resampler's starting scales under kosmos2_init "spatial": measured on the simulator (README, FALCON section).
SPATIAL_DENSE_STD = 0.6        # image tokens (L2-normalised) -> elements ~0.6, above the latents' 0.5
SPATIAL_LATENT_STD = 0.5
SPATIAL_QK_GAIN = 4.5          # q/k std = gain / sqrt(embed_dim): attention logits of a few units at the start


@torch.no_grad()
def spatial_init_(backbone: nn.Module) -> nn.Module:
    """kosmos2_init "spatial", in place, for a Kosmos-2 trained from scratch: the vision tower's patch position
    embeddings become a 2-D sin-cos code (class slot zero) of unit amplitude, so patch tokens carry where they
    are; the image-to-text resampler gets image tokens larger than its latent queries, q/k projections large
    enough that each latent query attends to a few tokens, and v/out projections of unit gain (the resampler has
    no residual path, so two std-0.02 projections in a row shrink what reaches the vision tower ~20x). With
    transformers' initialisation (latents N(0, 1), dense and projections std 0.02) every query averages the image
    tokens almost uniformly and the average is swamped by the latents themselves. With this a probe learns the
    gripper's cell from the latents; stage 1 of the sim recipe still settles on a constant chunk unless it starts
    from the grounded stage 0 (README)."""
    emb = backbone.vision_model.model.embeddings
    grid = int(round((emb.num_positions - 1) ** 0.5))
    pe = emb.position_embedding.weight
    pe.zero_()
    pe[1:] = sincos_2d(grid, pe.shape[1]).to(pe.dtype)
    proj = backbone.image_to_text_projection
    proj.dense.weight.normal_(0.0, SPATIAL_DENSE_STD)
    proj.latent_query.normal_(0.0, SPATIAL_LATENT_STD)
    width = proj.latent_query.shape[1]
    for lin, std in ((proj.x_attn.q_proj, SPATIAL_QK_GAIN), (proj.x_attn.k_proj, SPATIAL_QK_GAIN),
                     (proj.x_attn.v_proj, 1.0), (proj.x_attn.out_proj, 1.0)):
        lin.weight.normal_(0.0, std / width ** 0.5)
    return backbone


def byte_tokenizer():
    """A tokenizer made here, without files: Kosmos-2's <s> <pad> </s> <unk> <grounding> (ids 0-4), then one id
    per byte (5-260, GPT-2's byte-to-character table, no merges); a prompt is framed `<s> text </s>` as XLM-R's
    tokenizer frames it. For a Kosmos-2 trained from scratch (an inline config)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(BYTE_SPECIALS)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", additional_special_tokens=["<grounding>"])
    fast.padding_side = "right"
    return fast


def load_tokenizer(path: str | Path):
    """The Kosmos-2 folder's tokenizer (XLM-R sentencepiece in the release)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise Kosmos2FolderError(f"{path}: no usable tokenizer files ({exc})") from None
    tok.padding_side = "right"
    return tok


def clip_normalize(rgb: torch.Tensor) -> torch.Tensor:
    """(.., 3, H, W) in [0, 1] -> CLIP-normalised (the RoboVLMs Kosmos image processor)."""
    mean = torch.tensor(CLIP_MEAN, device=rgb.device, dtype=rgb.dtype).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, device=rgb.device, dtype=rgb.dtype).view(3, 1, 1)
    return (rgb - mean) / std


def encode_images(backbone: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) CLIP-normalised -> (N, latent_query_num, D) image embeddings (RoboKosMos.model_encode_images)."""
    out = backbone.vision_model(pixel_values=pixels.to(backbone.dtype))
    x = backbone.vision_model.model.post_layernorm(out[0])
    x = F.normalize(x, dim=-1)
    x, _ = backbone.image_to_text_projection(x)
    return x


def image_prompt_embeddings(backbone: nn.Module, pixels: torch.Tensor, input_ids: torch.Tensor,
                            attention_mask: torch.Tensor, bos_offset: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels (N, 3, H, W) CLIP-normalised, prompt ids and mask (N, T) -> the text model's input embeddings
    (N, n_img + T, D) with the image tokens after BOS (index `bos_offset`), and their mask (image tokens 1)."""
    text = backbone.text_model.model.embed_tokens(input_ids)
    img = encode_images(backbone, pixels).to(text.dtype)
    ones = torch.ones(img.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device)
    return (torch.cat([text[:, :bos_offset], img, text[:, bos_offset:]], 1),
            torch.cat([attention_mask[:, :bos_offset], ones, attention_mask[:, bos_offset:]], 1))


def action_token_states(backbone: nn.Module, action_token: torch.Tensor, pixels: torch.Tensor,
                        input_ids: torch.Tensor, attention_mask: torch.Tensor, bos_offset: int = 1) -> torch.Tensor:
    """RoboVLMs forward_continuous (history_type "post", one action token): pixels (N, 3, H, W), prompt ids and
    mask (N, T) -> the action token's last hidden state (N, D).

    The image tokens go after BOS (index `bos_offset`) with mask 1; the action token before the last position
    (T + n_img - 1: EOS for an unpadded prompt; behind the padding for a right-padded one, as in the reference)
    with mask 1."""
    x, m = image_prompt_embeddings(backbone, pixels, input_ids, attention_mask, bos_offset)
    pos = x.shape[1] - 1
    act = action_token.to(x.dtype).expand(len(x), 1, -1)
    x = torch.cat([x[:, :pos], act, x[:, pos:]], 1)
    m = torch.cat([m[:, :pos], torch.ones_like(m[:, :1]), m[:, pos:]], 1)
    hidden = backbone.text_model.model(inputs_embeds=x, attention_mask=m).last_hidden_state
    return hidden[:, pos]
