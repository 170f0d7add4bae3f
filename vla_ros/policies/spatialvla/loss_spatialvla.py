"""SpatialVLA's training loss, as the reference (`data/dataset.py`, `model/processing_spatialvla.py`,
`train/monkey_patch.py::concat_pad_data_collator`, the training branch of `_update_causal_mask`):

- the suffix is the chunk's action tokens (3 per step, BOUNDS_Q99-normalised with the per-dim mask) and <eos>;
  labels are -100 on the prompt;
- sequences are right-padded with id 0 (labels -100); the mask is causal, then every prompt column (token type
  0) is opened to every row, which re-opens the padding columns too (reference quirk, kept unless
  `train_mask_padding`);
- positions from 1; next-token cross-entropy over the labelled positions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vla_ros.policies.spatialvla.processing_spatialvla import (
    SpatialVLAInputError,
    build_prompt,
    normalize,
    reference_actions,
)

IGNORE = -100


def action_token_ids(policy, action: torch.Tensor, pad: torch.Tensor | None) -> list[list[int]]:
    """(B, T, 1, 7) actions [dxyz, rotation vector, gripper] -> per sample the suffix ids (3 per step + <eos>);
    padded steps get IGNORE."""
    raw = reference_actions(action[:, :, 0].detach().cpu().double().numpy())
    B, T = raw.shape[:2]
    ids = policy.action_grid.encode(normalize(raw.reshape(-1, 7), policy.stats).reshape(-1, 7)) + policy.action_begin
    ids = ids.reshape(B, T, 3)
    if pad is not None:
        ids[pad.cpu().numpy().astype(bool)] = IGNORE
    return [row.reshape(-1).tolist() + [policy.eos_id] for row in ids]


def teacher_forced_logits(policy, batch: dict, labelled_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S, V) logits of prompt + suffix under the training mask, and the (B, S) labels. `labelled_only`:
    (N, V) logits at the N positions whose next token is labelled and those (N,) labels: the same next-token
    loss without the vocabulary-wide logits (and their soft-capping) of every prompt position."""
    if policy.stats is None:
        raise SpatialVLAInputError("training needs statistics[unnorm_key] to normalise the actions")
    device = batch["rgb"].device
    prompts = [policy.tokenizer.encode(build_prompt(t, policy.n_image_tokens), add_special_tokens=False).ids
               for t in batch["instruction"]]
    suffixes = action_token_ids(policy, batch["action"], batch.get("action_pad"))
    seqs = [p + [max(s, 0) for s in suf] for p, suf in zip(prompts, suffixes)]
    S = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), S, dtype=torch.long, device=device)
    labels = torch.full_like(ids, IGNORE)
    prompt_col = torch.zeros_like(ids, dtype=torch.bool)
    real = torch.zeros_like(ids, dtype=torch.bool)
    for i, (p, suf) in enumerate(zip(prompts, suffixes)):
        n = len(p) + len(suf)
        ids[i, :n] = torch.tensor(seqs[i], device=device)
        labels[i, len(p):n] = torch.tensor(suf, device=device)
        prompt_col[i, :len(p)] = True
        real[i, :n] = True
    if policy.args.intrinsics_source == "camera_info":
        K = batch["K"][:, 0]
    else:  # the reference's dataset calls its processor without unnorm_key: the 'default' K
        key = "default" if policy.args.train_intrinsics == "default" else None
        K = policy.checkpoint_K(len(seqs), device, key)
    emb = policy.embed(ids, policy.image_features(batch["rgb"][:, 0], K, policy.sensor_depth(batch, policy.INPUTS)))
    blocked = torch.ones(S, S, dtype=torch.bool, device=device).triu(1)[None].expand(len(seqs), -1, -1).clone()
    blocked |= ~real[:, None, :]  # padding columns (attention_mask 0)
    opened = prompt_col | ~real if not policy.args.train_mask_padding else prompt_col  # token type 0 columns
    blocked &= ~opened[:, None, :]
    low = torch.finfo(policy.dtype).min
    full = torch.zeros(blocked.shape, dtype=policy.dtype, device=device).masked_fill(blocked, low)[:, None]
    q = torch.arange(S, device=device)
    far = q[None, :] <= q[:, None] - policy.language_model.config.sliding_window  # sliding layers: keys too old
    sliding = full.masked_fill(far, low)
    pos = torch.arange(1, S + 1, device=device)[None].expand(len(seqs), -1)
    lm, masks = policy.language_model, {"full_attention": full, "sliding_attention": sliding}
    if not labelled_only:
        return lm(inputs_embeds=emb, attention_mask=masks, position_ids=pos).logits.float(), labels
    hidden = lm.model(inputs_embeds=emb, attention_mask=masks, position_ids=pos).last_hidden_state
    sel = labels[:, 1:] != IGNORE
    logits = lm.lm_head(hidden[:, :-1][sel])
    cap = lm.config.final_logit_softcapping  # as Gemma2ForCausalLM applies it
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.float(), labels[:, 1:][sel]


def reference_loss(policy, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
    logits, labels = teacher_forced_logits(policy, batch, labelled_only=True)
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(-1) == labels).float().mean()
    return loss, {"token_ce": float(loss.detach()), "token_acc": float(acc), "loss": float(loss.detach()),
                  "action_loss": float(loss.detach())}
