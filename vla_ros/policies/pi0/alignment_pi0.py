"""Spatial Forcing on π0 (openpi-SF `pi0_align_pytorch.py`): the image-token span of the PaliGemma hidden states
at `align_layer` is projected and aligned to a frozen VGGT-compatible teacher's last-layer patch tokens (+ UV
position encoding, bilinearly resized to the image-token grid). The teacher sees the un-augmented images in
[0, 1] with padding (and empty images) white. Tokens of empty image slots and of padded pixels (nearest-
downsampled to the patch grid) are masked out. The teacher is built on first use, never saved, never run at
inference."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vla_ros.policies.spatial_model.forcing import (
    build_teacher,
    masked_cosine_alignment_loss,
    resample_teacher_tokens,
    vggt_input_images,
)


def teacher(policy):
    if not policy._teacher:
        sf = policy.args.spatial_forcing
        policy._teacher.append(build_teacher(sf.teacher, sf.teacher_checkpoint, sf.teacher_seed))
    return policy._teacher[0].to(policy.action_in_proj.weight.device)


def alignment_mask(slot_valid: torch.Tensor, pad_masks: list[torch.Tensor], grid: int) -> torch.Tensor:
    """(B, slots) real images and per slot (B, S, S) real pixels -> (B, slots * grid^2) tokens to align."""
    per_token = slot_valid.repeat_interleave(grid * grid, dim=1)
    pix = torch.stack(pad_masks, 1).float()  # (B, slots, S, S)
    down = F.interpolate(pix, size=(grid, grid), mode="nearest").bool().flatten(1)
    return per_token & down


def alignment_loss(policy, feats: dict) -> torch.Tensor:
    sf = policy.args.spatial_forcing
    clean, pad_masks = zip(*feats["clean"])
    n_img = policy.n_slots * policy.n_image_tokens
    student = policy.align_projector(feats["hidden"][:, :n_img].float())
    model = teacher(policy)
    images = vggt_input_images(torch.stack(clean, 1), sf.teacher.img_size)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=images.is_cuda):
        layers, start = model.aggregator(images)
    tokens = layers[sf.teacher_layer][:, :, start:].float()
    hw = tuple(images.shape[-2:])
    p = sf.teacher.patch_size
    target = resample_teacher_tokens(tokens, (hw[0] // p, hw[1] // p), hw, n_img, sf.pe_scale if sf.use_pe else 0.0,
                                     sf.omega0, align_corners=True)
    grid = policy.config.image_size // policy.args.vision.patch_size
    mask = alignment_mask(feats["slot_valid"], list(pad_masks), grid)
    return masked_cosine_alignment_loss(student, target, mask)
