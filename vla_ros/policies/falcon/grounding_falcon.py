"""Stage 0 of the from-scratch recipe (`reference.stage: 0`): grounded-text pretraining of an inline Kosmos-2.

The release starts from Microsoft's pretrained Kosmos-2, whose image tokens already say where things are; a
Kosmos-2 built here at a small width has no such weights, and stage 1 from a random one settles on a constant
chunk (README, FALCON section). Stage 0 gives it Kosmos-2's own pretraining objective, next-token prediction of
grounded text, on the training frames: after the FALCON prompt the text names the image cell of the gripper and
of where its next grasp or release is commanded (`"... at 43 to 52"`: x then y on a `grid` x `grid` partition of
the image, from the measured end-effector position and the dataset's `subgoal_m`, projected with K and the
camera pose). The loss covers the four cell digits only. A departure for training from scratch; a released
Kosmos-2 never runs it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vla_ros.policies.falcon.kosmos_falcon import clip_normalize, image_prompt_embeddings

NEEDS = ("ee_position_m", "subgoal_m", "K", "T_base_camera")
ANSWER = " at {}{} to {}{}"  # one token per byte: the digits sit 8, 7, 2 and 1 tokens before </s>
DIGIT_OFFSETS = (8, 7, 2, 1)
MIN_DEPTH_M = 0.05


def image_cells(points_base_m: torch.Tensor, K: torch.Tensor, T_base_camera: torch.Tensor, image_size: int,
                grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (N, 3) in the base frame -> ((N, 2) long x / y cells of a grid x grid partition of the image,
    clamped to the border, (N,) bool: in front of the camera). K (N, 3, 3) for the image_size-pixel image,
    T_base_camera (N, 4, 4) the optical frame in the base frame."""
    homog = torch.cat([points_base_m, torch.ones_like(points_base_m[:, :1])], -1)[..., None]
    p_cam = (torch.linalg.inv(T_base_camera.double()) @ homog.double())[:, :3, 0]
    in_front = p_cam[:, 2] > MIN_DEPTH_M
    uvw = (K.double() @ p_cam[..., None])[..., 0]
    uv = uvw[:, :2] / uvw[:, 2:3].clamp(min=MIN_DEPTH_M)
    cells = torch.floor(uv / image_size * grid).long().clamp(0, grid - 1)
    return cells, in_front


def grounding_targets(frames: dict, image_size: int, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last frame's (N, 4) cells (gripper x, y, next event x, y) of the first arm and (N,) validity."""
    missing = [k for k in NEEDS if k not in frames]
    if missing:
        raise ValueError(f"method_args.reference.stage 0 (grounded Kosmos-2 pretraining) needs {missing} in the "
                         "batch: a vla_ros dataset whose episodes carry the measured ee_pose")
    K, T = frames["K"][:, -1].float(), frames["T_base_camera"][:, -1].float()
    ee = frames["ee_position_m"][:, -1, 0].float()
    goal = ee + frames["subgoal_m"][:, -1, 0].float()
    here, ok_here = image_cells(ee, K, T, image_size, grid)
    there, ok_there = image_cells(goal, K, T, image_size, grid)
    return torch.cat([here, there], 1), ok_here & ok_there


def grounded_lm_loss(backbone, tokenizer, prompt: str, frames: dict, image_size: int, grid: int
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the four cell digits after `prompt` (with the instruction) and the image tokens, the
    image spliced in after BOS as the action path does; samples with a point behind the camera are left out."""
    cells, valid = grounding_targets(frames, image_size, grid)
    text = [prompt.format(s.strip()) + ANSWER.format(*c) for s, c in zip(frames["instruction"], cells.tolist())]
    tok = tokenizer(text, padding="longest", return_tensors="pt")
    ids, mask = tok["input_ids"].to(cells.device), tok["attention_mask"].to(cells.device)
    x, m = image_prompt_embeddings(backbone, clip_normalize(frames["rgb"][:, -1]), ids, mask)
    n_img = x.shape[1] - ids.shape[1]
    logits = backbone.text_model(inputs_embeds=x, attention_mask=m).logits
    eos = mask.sum(1) - 1
    pos = torch.stack([eos - o for o in DIGIT_OFFSETS], 1)  # the digits' token positions in `ids`
    target = ids.gather(1, pos)
    # the logits that predict token i of `ids` (i >= 1) sit at i - 1 + n_img once the image follows BOS
    pred = logits.gather(1, (pos + n_img - 1)[..., None].expand(-1, -1, logits.shape[-1]))
    target = torch.where(valid[:, None], target, torch.full_like(target, -100))
    if not bool(valid.any()):  # nothing to ground in this batch: a zero loss that keeps the graph
        loss = pred.sum() * 0.0
    else:
        loss = F.cross_entropy(pred.flatten(0, 1).float(), target.flatten(), ignore_index=-100)
    hit = (pred.argmax(-1) == target).float()[valid]
    acc = float(hit.mean()) if hit.numel() else float("nan")
    return loss, {"grounding_ce": float(loss.detach()), "grounding_acc": acc, "loss": float(loss.detach())}
