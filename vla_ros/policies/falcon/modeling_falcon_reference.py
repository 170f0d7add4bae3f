"""FALCON as released: Kosmos-2 + learned action token (RoboVLMs), the ESM's last-layer patch tokens pooled
(FC: max, LSTM: mean) through PCDInjector_V1 and ADDED to the action token's hidden state, then the reference
action head. `FalconReferenceModel`'s state dict is the Lightning checkpoint's without the `model.` prefix:
backbone.* (Kosmos2ForConditionalGeneration), action_token, act_head.* (mlp / rnn, actions, gripper,
spatial_injector, vggt_net = the ESM).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vla_ros.core.config import ConfigError
from vla_ros.core.normalize import NormStats
from vla_ros.policies.base import Policy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.falcon.configuration_falcon import FalconConfig, FalconReferenceArgs
from vla_ros.policies.falcon.heads_falcon import FalconActionHead
from vla_ros.policies.falcon.kosmos_falcon import (
    action_token_states,
    build_kosmos2,
    byte_tokenizer,
    clip_normalize,
    inline_kosmos2_config,
    load_tokenizer,
    spatial_init_,
)
from vla_ros.policies.falcon.processing_falcon import reference_esm_inputs, reference_frames
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig


class FalconReferenceModel(nn.Module):
    """backbone (Kosmos2ForConditionalGeneration), action_token (D,), act_head (FalconActionHead)."""

    def __init__(self, backbone: nn.Module, args: FalconReferenceArgs, esm_cfg: ESMConfig, chunk: int):
        super().__init__()
        self.backbone = backbone
        D = backbone.config.text_config.embed_dim
        self.action_token = nn.Parameter(torch.zeros(D))
        esm = EmbodiedSpatialModel(esm_cfg) if args.use_esm else None
        self.act_head = FalconActionHead(args.head, D, args.hidden_size, chunk, 7, list(args.mlp_widths), esm,
                                         2 * esm_cfg.embed_dim, tuple(args.injector_widths), args.lstm_layers,
                                         args.window)


class FalconReferencePolicy(Policy):
    """The reference architecture behind the `falcon` method (FalconConfig.architecture "reference")."""

    method = "falcon"
    INPUTS = ("rgb", "depth", "pose")

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        super().__init__(config, norm_stats, external_weights)
        self.args = args_all = _falcon_args(config)
        self.ref = args = args_all.reference
        if len(config.camera_names) != 1:
            raise ConfigError(f"camera_names: the reference FALCON reads one static camera, got {config.camera_names}")
        if args.action_norm == "stats" and norm_stats is None:
            raise ConfigError("method_args.reference.action_norm: 'stats' needs the checkpoint's norm_stats")
        backbone, self.tokenizer = _backbone_and_tokenizer(config, args, external_weights)
        self.model = FalconReferenceModel(backbone, args, args_all.esm, config.horizon)
        self.rng = np.random.default_rng()
        # what the ESM is given at inference (and a chunk reports): depth / pose only where a fraction of frames
        # gets them (esm_gt's random draw is training-only)
        self.INPUTS = ("rgb",) + (("depth",) if args.use_esm and args.depth_gt_pt > 0 else ()) + \
            (("pose",) if args.use_esm and args.camera_gt_pt > 0 else ())
        self._frames: list[torch.Tensor] = []  # the LSTM's ESM frame buffer
        if args.use_esm and args_all.esm_checkpoint and external_weights:  # the esm-1b folder or a file
            from vla_ros.policies.falcon.loading_falcon import check_esm_folder, load_state_strict, read_esm_state

            check_esm_folder(args_all.esm_checkpoint, args_all.esm)
            load_state_strict(self.model.act_head.vggt_net, read_esm_state(args_all.esm_checkpoint),
                              f"method_args.esm_checkpoint {args_all.esm_checkpoint}")
        if args.init_from and external_weights:
            self.load_stage1(args.init_from)
        self.apply_stage(args.stage)

    def load_stage1(self, directory: str) -> None:
        """Start stage 2 from a stage-1 checkpoint folder (model.safetensors): every key but the injector's and the
        ESM's must be there, and nothing else."""
        from pathlib import Path

        from safetensors.torch import load_file

        from vla_ros.core.constants import CKPT_WEIGHTS

        f = Path(directory) / CKPT_WEIGHTS
        if not f.is_file():
            raise ConfigError(f"method_args.reference.init_from: {f} not found (a stage-1 checkpoint folder)")
        state = load_file(str(f))
        own = self.model.state_dict()
        optional = ("model.act_head.spatial_injector.", "model.act_head.vggt_net.")
        own = {f"model.{k}": v for k, v in own.items()}
        missing = sorted(k for k in set(own) - set(state) if not k.startswith(optional))
        unexpected = sorted(set(state) - set(own))
        shapes = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or shapes:
            raise ConfigError(f"{f}: not a stage-1 checkpoint of this model: missing {missing[:8]}, unexpected "
                              f"{unexpected[:8]}, shape mismatches {shapes[:8]}")
        self.load_state_dict({k: v for k, v in state.items()}, strict=False)

    # --- training setup ---------------------------------------------------------------------------------------
    def apply_stage(self, stage: int) -> None:
        """Stage 0: the backbone trains (grounded pretraining). Stage 1: everything trains (the reference's full
        fine-tune; no ESM). Stage 2: ESM frozen, action-head
        MLPs frozen (train_act_head false), spatial injector trained, VLM trained. Both: train_vision and
        train_text_embedding as configured."""
        m = self.model
        m.requires_grad_(True)
        m.backbone.vision_model.requires_grad_(self.ref.train_vision)
        m.backbone.text_model.model.embed_tokens.requires_grad_(self.ref.train_text_embedding)
        head = m.act_head
        if stage == 0:  # grounded pretraining: the backbone only
            head.requires_grad_(False)
            m.action_token.requires_grad_(False)
        if stage == 2:
            head.requires_grad_(False)
            if head.uses_esm:
                head.spatial_injector.requires_grad_(True)
        if head.uses_esm:
            head.vggt_net.requires_grad_(False)

    def reset(self) -> None:
        self.model.act_head.reset()
        self._frames = []

    # --- forward ----------------------------------------------------------------------------------------------
    def _prompt(self, instructions: list[str], n_frames: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        text = [self.ref.prompt.format(s.strip()) for s in instructions]
        tok = self.tokenizer(text, truncation=True, padding="longest", max_length=512, return_tensors="pt")
        ids = tok["input_ids"].repeat_interleave(n_frames, 0).to(device)
        return ids, tok["attention_mask"].repeat_interleave(n_frames, 0).to(device)

    def action_states(self, batch: dict) -> torch.Tensor:
        """(B, L, D) action-token states, one Kosmos-2 pass per frame (history_type "post")."""
        rgb = batch["rgb"]  # (B, L, 3, H, W) in [0, 1]
        B, L = rgb.shape[:2]
        ids, mask = self._prompt(batch["instruction"], L, rgb.device)
        t = action_token_states(self.model.backbone, self.model.action_token, clip_normalize(rgb.flatten(0, 1)),
                                ids, mask)
        return t.reshape(B, L, -1)

    def spatial_features(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        """(B, L, D): the ESM (frozen, no grad) over the L frames jointly; last-layer patch tokens pooled over
        tokens (FC: max, LSTM: mean), then the injector."""
        head = self.model.act_head
        esm_batch = {**batch, **{k[:-4]: v for k, v in batch.items() if k.endswith("_esm")}}
        if self.ref.depth_mask_all_ones and "depth_valid" in esm_batch:
            esm_batch["depth_valid"] = torch.ones_like(esm_batch["depth_valid"])
        esm_gt = self.ref.esm_gt if self.training else "fraction"  # inference: the ESM's `inference`
        kw = reference_esm_inputs(esm_batch, modalities, esm_gt, self.ref.camera_gt_pt, self.ref.depth_gt_pt, self.rng)
        with torch.no_grad():
            layers, start = head.vggt_net.aggregator(esm_batch["rgb"].to(head.vggt_net.aggregator.camera_token.dtype),
                                                      **kw)
            tokens = layers[-1][:, :, start:]  # (B, L, P, 2C)
            pooled = tokens.amax(2) if self.ref.head == "fc" else tokens.mean(2)
        return head.spatial_injector(pooled.to(head.spatial_injector.proj0[0].weight.dtype))

    def forward_head(self, batch: dict, modalities: tuple[str, ...], rollout: bool = False):
        t_act = self.action_states(batch)
        head = self.model.act_head
        spatial = self.spatial_features(batch, modalities) if head.uses_esm else None
        return head(t_act, spatial.to(t_act.dtype) if spatial is not None else None, rollout=rollout)

    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        return {"action_hidden": self.action_states(reference_frames(batch))[:, -1]}

    # --- actions ----------------------------------------------------------------------------------------------
    def _bounds(self, arm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.ref.action_norm == "clip":
            lo, hi = self.ref.norm_bounds
            return torch.full_like(arm[..., :6], lo), torch.full_like(arm[..., :6], hi), torch.ones(6, dtype=torch.bool)
        t = lambda v: torch.tensor(v[:6], dtype=arm.dtype, device=arm.device)  # noqa: E731
        return t(self.ref.action_q01), t(self.ref.action_q99), torch.tensor(self.ref.action_mask[:6])

    def _unnormalize_arm(self, arm: torch.Tensor) -> torch.Tensor:
        """Normalised (.., 6) -> raw arm values, then rotation as a rotation vector."""
        if self.ref.action_norm in ("clip", "q01_q99"):
            lo, hi, mask = self._bounds(arm)
            arm = torch.where(mask.to(arm.device), 0.5 * (arm + 1) * (hi - lo) + lo, arm)
        if self.ref.rotation == "euler_xyz":
            arm = torch.cat([arm[..., :3], _euler_to_rotvec(arm[..., 3:6])], -1)
        return arm

    def _normalize_arm(self, arm: torch.Tensor) -> torch.Tensor:
        """Raw (.., 6) with a rotation vector -> the head's targets (the inverse of _unnormalize_arm)."""
        if self.ref.rotation == "euler_xyz":
            arm = torch.cat([arm[..., :3], _rotvec_to_euler(arm[..., 3:6])], -1)
        if self.ref.action_norm in ("clip", "q01_q99"):
            lo, hi, mask = self._bounds(arm)
            # + 1e-8 as the reference: a dimension with q01 == q99 maps to -1 instead of NaN
            norm = 2 * (torch.minimum(torch.maximum(arm, lo), hi) - lo) / (hi - lo + 1e-8) - 1
            arm = torch.where(mask.to(arm.device), norm, arm)
        return arm

    def predict_actions(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        """(B, T, 1, 7) raw actions: arm un-normalised, gripper 1.0 (open) where sigmoid(logit) > 0.5, else 0.0."""
        batch = reference_frames(batch)
        rollout = self.ref.head == "lstm" and batch["rgb"].shape[1] == 1 and not self.training
        if rollout and self.model.act_head.uses_esm:  # the ESM sees a rolling buffer of up to `window` frames,
            self._frames = (self._frames + [batch.get("rgb_esm", batch["rgb"])])[-self.ref.window:]
            batch = {**batch, "rgb_esm": torch.cat(self._frames, 1)}
            modalities = ("rgb",)  # images only, as the reference LSTMDecoder_ESM passes them
        arm, logit = self.forward_head(batch, modalities, rollout=rollout)
        arm, logit = arm[:, -1].float(), logit[:, -1].float()  # the last frame's chunk: (B, T, 6), (B, T)
        if self.ref.action_norm == "stats":
            return self.actions.unnormalize(arm[:, :, None], torch.sigmoid(logit)[:, :, None])
        grip = (torch.sigmoid(logit) > 0.5).float()
        return torch.cat([self._unnormalize_arm(arm), grip[..., None]], -1)[:, :, None]

    def observation_to_batch(self, obs) -> dict:
        """The reference inference preprocessing: Kosmos-2 gets the frame resized (stretched) to image_size with
        PIL bicubic; the ESM gets it centre-padded to a square, then PIL bicubic to image_size (`*_esm` keys: rgb,
        depth nearest with its mask, K shifted by the pad and scaled)."""
        import dataclasses

        from PIL import Image

        from vla_ros.policies.falcon.processing_falcon import pad_square

        obs = dataclasses.replace(obs, proprio=np.zeros(self.config.proprio_dim, np.float32),
                                  proprio_names=list(self.config.proprio_names))
        batch = super().observation_to_batch(obs)  # FALCON reads no proprio
        if self.ref.preprocess == "vla_ros":  # as the training samples of a vla_ros dataset, for both models
            return batch
        cam = {c.name: c for c in obs.cameras}[self.config.camera_names[0]]
        s, dev = self.config.image_size, batch["rgb"].device
        rgb = np.ascontiguousarray(cam.rgb, np.uint8)
        kos = np.asarray(Image.fromarray(rgb).resize((s, s), Image.Resampling.BICUBIC), np.float32) / 255.0
        sq, left, top = pad_square(rgb)
        esm = np.asarray(Image.fromarray(sq).resize((s, s), Image.Resampling.BICUBIC), np.float32) / 255.0
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None, None].to(dev)  # noqa: E731
        batch["rgb"], batch["rgb_esm"] = to_t(kos), to_t(esm)
        scale = s / sq.shape[0]
        K = np.asarray(cam.K, np.float64).copy()
        K[0, 2] += left
        K[1, 2] += top
        K[:2] *= scale
        batch["K_esm"] = torch.from_numpy(K).float()[None, None].to(dev)
        if cam.depth_m is not None:
            valid = cam.depth_valid if cam.depth_valid is not None else cam.depth_m > 0
            d = np.where(valid, np.nan_to_num(cam.depth_m.astype(np.float32)), 0.0)
            d_sq, v_sq = pad_square(d)[0], pad_square(valid.astype(np.uint8))[0]
            d_r = np.asarray(Image.fromarray(d_sq).resize((s, s), Image.Resampling.NEAREST), np.float32)
            v_r = np.asarray(Image.fromarray(v_sq).resize((s, s), Image.Resampling.NEAREST)) > 0
            batch["depth_m_esm"] = torch.from_numpy(np.where(v_r, d_r, 0.0).astype(np.float32))[None, None].to(dev)
            batch["depth_valid_esm"] = torch.from_numpy(v_r)[None, None].to(dev)
        return batch

    def postprocess(self, actions, obs):
        """FC executes the whole chunk, LSTM its first step (execute_steps overrides)."""
        n = self.ref.execute_steps or (actions.shape[0] if self.ref.head == "fc" else 1)
        if self.ref.accumulate_deltas and self.config.action_reference == "delta_measured":
            actions = accumulate_deltas(actions)
        return actions[:n]

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Huber (delta 1) on the 6 arm values over the unpadded steps + gripper_weight * BCE-with-logits, over
        every frame of the sample (a window: each frame's chunk, as RoboVLMs' loss over the window). Stage 0: the
        grounded-text loss instead (grounding_falcon.py)."""
        from vla_ros.policies.base import choose_modalities

        frames = reference_frames(batch)
        if self.ref.stage == 0:
            from vla_ros.policies.falcon.grounding_falcon import grounded_lm_loss

            return grounded_lm_loss(self.model.backbone, self.tokenizer, self.ref.prompt, frames,
                                    self.config.image_size, self.ref.grounding_grid)
        used = choose_modalities(self.config.modalities, None, True, True)
        arm, logit = self.forward_head(frames, used)  # (B, L, T, 6), (B, L, T)
        action = frames["action"][..., 0, :]  # (B, L, T, 7), one arm
        if self.ref.action_norm == "stats":
            target, grip = self.actions.normalize(frames["action"].flatten(0, 1))
            target, grip = target[:, :, 0].unflatten(0, arm.shape[:2]), grip[:, :, 0].unflatten(0, arm.shape[:2])
        else:
            target, grip = self._normalize_arm(action[..., :6]), action[..., 6]
        keep = ~frames["action_pad"] if "action_pad" in frames else torch.ones_like(grip, dtype=torch.bool)
        if self.ref.arm_loss == "huber":
            arm_l = F.huber_loss(arm, target.to(arm.dtype), reduction="none", delta=self.ref.huber_delta)
        else:
            arm_l = F.mse_loss(arm, target.to(arm.dtype), reduction="none")
        arm_loss = arm_l[keep].mean()
        label = (grip > 0.5).to(logit.dtype)
        grip_loss = F.binary_cross_entropy_with_logits(logit, label, reduction="none")[keep].mean()
        acc = ((torch.sigmoid(logit) > 0.5).to(label.dtype) == label).float()[keep].mean()
        total = arm_loss + self.ref.gripper_weight * grip_loss
        return total, {"arm_loss": float(arm_loss.detach()), "gripper_bce": float(grip_loss.detach()),
                       "gripper_acc": float(acc), "action_loss": float(total.detach()), "loss": float(total.detach())}


def accumulate_deltas(actions: np.ndarray) -> np.ndarray:
    """(T, A, 7) per-step deltas (xyz, rotation vector, gripper) -> each step relative to the start: positions
    summed, rotations composed in the base frame (R_j = dR_j @ R_{j-1}), the gripper unchanged."""
    from scipy.spatial.transform import Rotation

    out = np.array(actions, dtype=np.float64, copy=True)
    out[..., :3] = np.cumsum(out[..., :3], axis=0)
    for a in range(out.shape[1]):
        R = Rotation.identity()
        for j in range(out.shape[0]):
            R = Rotation.from_rotvec(actions[j, a, 3:6]) * R
            out[j, a, 3:6] = R.as_rotvec()
    return out.astype(np.asarray(actions).dtype)


def _euler_to_rotvec(rpy: torch.Tensor) -> torch.Tensor:
    """Static-axes xyz Euler angles (SimplerEnv's euler2axangle, 'sxyz') -> rotation vectors."""
    from scipy.spatial.transform import Rotation

    flat = rpy.detach().double().cpu().reshape(-1, 3).numpy()
    rv = Rotation.from_euler("xyz", flat).as_rotvec()
    return torch.from_numpy(rv).to(rpy.device, rpy.dtype).reshape(rpy.shape)


def _rotvec_to_euler(rv: torch.Tensor) -> torch.Tensor:
    from scipy.spatial.transform import Rotation

    flat = rv.detach().double().cpu().reshape(-1, 3).numpy()
    e = Rotation.from_rotvec(flat).as_euler("xyz")
    return torch.from_numpy(e).to(rv.device, rv.dtype).reshape(rv.shape)


def _backbone_and_tokenizer(config: PolicyConfig, args: FalconReferenceArgs, external_weights: bool):
    """Kosmos2ForConditionalGeneration and its tokenizer: from the local folder `vlm.path` (kind "hf"; its weights
    when `external_weights`), or built here from `reference.kosmos2` (kind "tiny"; randomly initialised)."""
    from transformers import Kosmos2ForConditionalGeneration

    vlm = config.vlm
    if args.kosmos2:
        if vlm.kind != "tiny":
            raise ConfigError(f"vlm.kind: {vlm.kind!r} with method_args.reference.kosmos2 set; an inline Kosmos-2 "
                              "is built here (kind 'tiny'), a released one read from vlm.path (kind 'hf', no kosmos2)")
        backbone = Kosmos2ForConditionalGeneration(inline_kosmos2_config(args.kosmos2, config.image_size,
                                                                         vlm.patch_size))
        if args.kosmos2_init == "spatial":
            spatial_init_(backbone)
    elif vlm.kind == "hf" and vlm.path:
        backbone = build_kosmos2(vlm.path, load_weights=external_weights)
    else:
        raise ConfigError("vlm: FALCON's reference architecture needs kind 'hf' and path = a local Kosmos-2 folder, "
                          f"or method_args.reference.kosmos2 (an inline Kosmos2Config; got kind {vlm.kind!r}, path "
                          f"{vlm.path!r}); method_args.architecture 'compact' builds the small vla_ros model")
    if args.tokenizer == "folder" and not vlm.path:
        raise ConfigError("method_args.reference.tokenizer: 'folder' needs vlm.path (a Kosmos-2 folder); 'bytes' "
                          "builds one here")
    tokenizer = byte_tokenizer() if args.tokenizer == "bytes" else load_tokenizer(vlm.path)
    vocab = backbone.config.text_config.vocab_size
    if len(tokenizer) > vocab:
        raise ConfigError(f"method_args.reference.tokenizer: {args.tokenizer!r} has {len(tokenizer)} ids, Kosmos-2's "
                          f"text_config.vocab_size is {vocab}")
    return backbone, tokenizer


def _falcon_args(config: PolicyConfig) -> FalconConfig:
    from vla_ros.core.config import from_dict

    return from_dict(FalconConfig, config.method_args, "method_args")
