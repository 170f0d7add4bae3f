"""π0 inputs as openpi prepares them: images resized with padding to the model size and scaled to [-1, 1] (plus
the training augmentations), the prompt tokenised with PaliGemma's tokenizer (BOS + cleaned text + a newline, padded
to max_token_len with a mask), state and actions zero-padded to the model's action_dim; the flow-matching time
embedding and the attention masks (openpi `pi0_pytorch.py`, `preprocessing_pytorch.py`, `image_tools.py`,
`tokenizer.py`)."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F


class Pi0InputError(ValueError):
    """An input or file does not fit π0; the message names it."""


def resize_with_pad(images: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) in [-1, 1] -> (B, C, height, width) resized bilinearly without distortion and padded with -1
    (black), centred; and the (B, height, width) mask of real (not padded) pixels."""
    B, C, h, w = images.shape
    mask = torch.ones(B, height, width, dtype=torch.bool, device=images.device)
    if (h, w) == (height, width):
        return images, mask
    ratio = max(w / width, h / height)
    rh, rw = int(h / ratio), int(w / ratio)
    x = F.interpolate(images.float(), size=(rh, rw), mode="bilinear", align_corners=False).clamp(-1.0, 1.0)
    top, left = (height - rh) // 2, (width - rw) // 2
    pad = (left, width - rw - left, top, height - rh - top)
    mask = F.pad(torch.ones(B, rh, rw, dtype=torch.bool, device=images.device), pad, value=False)
    return F.pad(x, pad, value=-1.0), mask


def augment_image(image: torch.Tensor, geometric: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """openpi's training augmentation of one camera, (B, C, H, W) in [-1, 1]: for `geometric` cameras a random 95%
    crop resized back and a rotation of U(-5, 5) deg (when > 0.1 deg); then brightness x U(0.7, 1.3), contrast
    x U(0.6, 1.4) about the image mean, saturation x U(0.5, 1.5) about the grey value; clamped. One draw per
    call (the whole batch), as openpi does."""
    def rand():
        return torch.rand(1, generator=generator).item()
    x = image.float() / 2.0 + 0.5
    B, C, H, W = x.shape
    if geometric:
        ch, cw = int(H * 0.95), int(W * 0.95)
        if H - ch > 0 and W - cw > 0:
            top = int(rand() * (H - ch + 1)) if H - ch else 0
            left = int(rand() * (W - cw + 1)) if W - cw else 0
            x = F.interpolate(x[:, :, top:top + ch, left:left + cw], size=(H, W), mode="bilinear", align_corners=False)
        angle = rand() * 10 - 5
        if abs(angle) > 0.1:
            a = math.radians(angle)
            gy, gx = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
            grid = torch.stack([gx * math.cos(a) - gy * math.sin(a), gx * math.sin(a) + gy * math.cos(a)], -1)
            x = F.grid_sample(x, grid[None].expand(B, -1, -1, -1).to(x), mode="bilinear", padding_mode="zeros",
                              align_corners=False)
    x = x * (0.7 + rand() * 0.6)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (0.6 + rand() * 0.8) + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (grey + (x - grey) * (0.5 + rand() * 1.0)).clamp(0, 1)
    return (x * 2.0 - 1.0).to(image.dtype)


class PromptTokenizer:
    """PaliGemma prompt tokens as openpi's `PaligemmaTokenizer` (π0 format): strip, '_' and newlines -> spaces,
    BOS + tokens + tokens(newline), right-padded with 0 to `max_len` (or cut to it) with a True-for-real mask.

    Args:
        kind: "sentencepiece" (a local `paligemma_tokenizer.model`, needs the sentencepiece package, or an HF
            `tokenizer.json`) or "bytes" (UTF-8 bytes + 3 with BOS 2, for tiny test models).
        path: the tokenizer file (kind "sentencepiece").
        max_len: max_token_len.
    """

    BOS_BYTES = 2

    def __init__(self, kind: str, path: str, max_len: int):
        self.kind, self.max_len = kind, max_len
        self._sp = self._hf = None
        if kind == "bytes":
            return
        p = Path(path) if path else None
        if p is not None and p.is_dir():
            p = next((p / n for n in ("paligemma_tokenizer.model", "tokenizer.model", "tokenizer.json")
                      if (p / n).is_file()), p)
        if p is None or not p.is_file():
            raise Pi0InputError(f"method_args.tokenizer_path: {path!r} is not a local PaliGemma tokenizer "
                                "(paligemma_tokenizer.model or tokenizer.json; nothing is downloaded)")
        if p.suffix == ".json":
            from tokenizers import Tokenizer

            self._hf = Tokenizer.from_file(str(p))
            self._hf.no_padding()
            self._hf.no_truncation()
        else:
            try:
                import sentencepiece
            except ImportError:
                raise Pi0InputError(f"{p}: reading a sentencepiece model needs the sentencepiece package "
                                    "(pip install .[pi0]), or give PaliGemma's tokenizer.json") from None
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(p))

    def _encode(self, text: str, bos: bool) -> list[int]:
        if self.kind == "bytes":
            return ([self.BOS_BYTES] if bos else []) + [b + 3 for b in text.encode("utf-8")]
        if self._sp is not None:
            return list(self._sp.encode(text, add_bos=bos))
        ids = self._hf.encode(text, add_special_tokens=False).ids
        bos_id = self._hf.token_to_id("<bos>")
        return ([bos_id] if bos else []) + list(ids)

    def __call__(self, prompts: list[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, max_len) token ids (long) and mask (bool)."""
        ids, masks = [], []
        for prompt in prompts:
            clean = prompt.strip().replace("_", " ").replace("\n", " ")
            tok = (self._encode(clean, True) + self._encode("\n", False))[: self.max_len]
            n = len(tok)
            ids.append(tok + [0] * (self.max_len - n))
            masks.append([True] * n + [False] * (self.max_len - n))
        return (torch.tensor(ids, dtype=torch.long, device=device),
                torch.tensor(masks, dtype=torch.bool, device=device))


def pad_to_dim(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero-pad the last axis to `dim` (openpi `pad_to_dim`); an input wider than `dim` is an error."""
    if x.shape[-1] > dim:
        raise Pi0InputError(f"{x.shape[-1]} values do not fit the model's action_dim {dim}")
    return F.pad(x, (0, dim - x.shape[-1]))


def sinusoidal_time_embedding(t: torch.Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0
                              ) -> torch.Tensor:
    """(B,) times -> (B, dim) [sin, cos] with periods geometrically spaced from min to max (openpi
    `create_sinusoidal_pos_embedding`, in float64 then cast to t's dtype)."""
    if dim % 2:
        raise ValueError(f"time embedding width must be even, got {dim}")
    frac = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64, device=t.device)
    period = min_period * (max_period / min_period) ** frac
    ang = (2 * math.pi / period)[None] * t.to(torch.float64)[:, None]
    return torch.cat([ang.sin(), ang.cos()], 1).to(t.dtype)


def make_att_2d_masks(pad_masks: torch.Tensor, ar_masks: torch.Tensor) -> torch.Tensor:
    """big_vision's prefix-LM masks: token i attends j when cumsum(ar)[j] <= cumsum(ar)[i] and both are real.
    pad_masks, ar_masks (B, N) -> (B, N, N) bool."""
    cum = torch.cumsum(ar_masks.long(), dim=1)
    return (cum[:, None, :] <= cum[:, :, None]) & (pad_masks[:, None, :] & pad_masks[:, :, None])
