"""The text tokenizer: the checkpoint's Gemma tokenizer.json (local file, `tokenizers`), checked against the model
config's <image> and <ACTION00000> ids; for the tiny config, a small character tokenizer with the same layout
(text vocabulary, then <image>, then the action tokens)."""
from __future__ import annotations

import string
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers

from vla_ros.policies.spatialvla.processing_spatialvla import (
    ACTION_TOKEN,
    BOS_TOKEN,
    EOS_TOKEN,
    IMAGE_TOKEN,
    SpatialVLAInputError,
)

SPECIALS = ["<pad>", EOS_TOKEN, BOS_TOKEN, "<unk>"]


def tiny_text_tokenizer(base_vocab: int, n_action_tokens: int) -> Tokenizer:
    """Characters (spaces as '▁', as Gemma) padded with <unusedN> to `base_vocab`, then <image> = base_vocab and
    <ACTION00000>... = base_vocab + 1 ..."""
    chars = ["▁", "\n", *string.ascii_lowercase, *string.digits, *".,!?'-:;()/"]
    vocab_list = SPECIALS + chars
    if len(vocab_list) > base_vocab:
        raise SpatialVLAInputError(f"tiny tokenizer: base_vocab {base_vocab} < {len(vocab_list)} characters")
    vocab_list += [f"<unused{i}>" for i in range(base_vocab - len(vocab_list))]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(vocab_list)}, [], unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.add_special_tokens(SPECIALS)  # matched whole in the text, as in Gemma's tokenizer.json (ids kept)
    tok.add_special_tokens([IMAGE_TOKEN])
    tok.add_special_tokens([ACTION_TOKEN.format(i) for i in range(n_action_tokens)])
    return tok


def load_text_tokenizer(path: str | Path) -> Tokenizer:
    p = Path(path)
    if not p.is_file():
        raise SpatialVLAInputError(f"{p}: tokenizer.json not found (the checkpoint's Gemma tokenizer)")
    try:
        return Tokenizer.from_file(str(p))
    except Exception as exc:  # tokenizers raises plain Exception subclasses for bad files
        raise SpatialVLAInputError(f"{p}: not a readable tokenizer.json ({exc})") from None


def check_token_ids(tok: Tokenizer, image_token_index: int, action_token_begin_idx: int, n_action: int,
                    where: str) -> None:
    """The tokenizer's <image>, <bos> and action ids must be the model config's; else a named error."""
    got = {IMAGE_TOKEN: tok.token_to_id(IMAGE_TOKEN), BOS_TOKEN: tok.token_to_id(BOS_TOKEN),
           "<ACTION00000>": tok.token_to_id(ACTION_TOKEN.format(0)),
           ACTION_TOKEN.format(n_action - 1): tok.token_to_id(ACTION_TOKEN.format(n_action - 1))}
    want = {IMAGE_TOKEN: image_token_index, "<ACTION00000>": action_token_begin_idx,
            ACTION_TOKEN.format(n_action - 1): action_token_begin_idx + n_action - 1}
    bad = {k: (v, want.get(k)) for k, v in got.items() if v is None or (k in want and v != want[k])}
    if bad:
        raise SpatialVLAInputError(f"{where}: tokenizer ids (got, config) disagree: {bad}")
