"""The one policy interface: reset(), infer(observation) -> ActionChunk, compute_loss(batch) -> (loss, metrics).

Subclasses implement `encode(batch, modalities, training) -> dict` (with "action_hidden" (B, W)) and may
override the head (`predict_actions`, `head_loss`) and add a training-only loss (`extra_loss`). Pre- and
post-processing (resize + K rescale, normalization, modality choice, chunk assembly) live in processing.py.
"""
from __future__ import annotations

import abc
import time

import torch
from torch import nn

from vla_ros.core.constants import MOD_RGB
from vla_ros.core.normalize import NormStats
from vla_ros.core.types import ActionChunk, Observation
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.processing import (
    ActionProcessor,
    PolicyInputError,
    actions_to_chunk,
    choose_modalities,
    observation_to_batch,
)

__all__ = ["Policy", "PolicyInputError", "choose_modalities"]

SUBGOAL_SCALE_M = 0.2  # subgoal targets are predicted in units of 20 cm


class Policy(nn.Module, abc.ABC):
    method = "base"
    INPUTS: tuple[str, ...] = (MOD_RGB,)  # modalities the model reads at inference
    TINY_ARGS: dict = {}  # method_args of the method's tiny config
    READS_PROPRIO = True  # False: the joint vector is not an input (e.g. SpatialVLA), so its size is not checked

    def __init__(self, config: PolicyConfig, norm_stats: NormStats | None = None, external_weights: bool = True):
        """external_weights: read the local weight files the config names (VLM folder, ESM/estimator checkpoints);
        False when a checkpoint's model.safetensors will provide every weight (load_policy)."""
        super().__init__()
        self.config = config
        self.norm_stats = norm_stats
        self.external_weights = external_weights
        self.actions = ActionProcessor(norm_stats)
        self.last_timing_s: dict[str, float] = {}  # the last infer(): preprocess, forward, postprocess (s)

    @classmethod
    def sample_window(cls, config: PolicyConfig) -> int:
        """Frames per training sample: 0 = one frame (the plain batch contract); W >= 1 = W consecutive frames
        with a leading frame axis (EpisodeDataset's `window`)."""
        return 0

    # --- interface ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear per-episode state (history windows, ensemblers)."""

    @torch.no_grad()
    def infer(self, obs: Observation, modalities: tuple[str, ...] | None = None) -> ActionChunk:
        t0 = time.perf_counter()
        batch = self.observation_to_batch(obs)
        has_depth = all(c.depth_m is not None for c in obs.cameras) and bool(batch["depth_valid"].any())
        has_pose = all(c.T_base_camera is not None for c in obs.cameras)
        used = choose_modalities(self.config.modalities, modalities, has_depth, has_pose)
        used = tuple(m for m in used if m in self.INPUTS)  # what this method can actually consume
        self.eval()
        t1 = time.perf_counter()
        actions = self.predict_actions(batch, used)[0].float().cpu().numpy()  # (T, A, 7)
        t2 = time.perf_counter()
        actions = self.postprocess(actions, obs)
        chunk = actions_to_chunk(actions, obs, self.config, used, self.method, time.perf_counter() - t0)
        self.last_timing_s = {"preprocess": t1 - t0, "forward": t2 - t1, "postprocess": time.perf_counter() - t2}
        return chunk

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        used = choose_modalities(self.config.modalities, None, True, True)
        feats = self.encode(batch, used, training=self.training)
        loss, metrics = self.head_loss(feats, batch)
        extra, extra_metrics = self.extra_loss(feats, batch)
        sub, sub_metrics = self.subgoal_loss(feats, batch)
        total = loss + extra + sub
        metrics.update(extra_metrics)
        metrics.update(sub_metrics)
        metrics["action_loss"] = float(loss.detach())  # comparable across methods (no training-only terms)
        metrics["loss"] = float(total.detach())
        return total, metrics

    # --- hooks for subclasses -----------------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, batch: dict, modalities: tuple[str, ...], training: bool = False) -> dict:
        """Features for the head; must contain "action_hidden" (B, W)."""

    def extra_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        return torch.zeros((), device=feats["action_hidden"].device), {}

    def subgoal_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """The auxiliary next-gripper-event position loss (HeadConfig.subgoal_weight), where the batch has the
        targets (`subgoal_m`, (B, A, 3) from the measured pose) and the policy the head."""
        head = getattr(self, "subgoal_head", None)
        if head is None or "subgoal_m" not in batch:
            return torch.zeros((), device=feats["action_hidden"].device), {}
        target = batch["subgoal_m"].to(feats["action_hidden"].dtype)
        err = torch.nn.functional.mse_loss(head(feats["action_hidden"]).view_as(target), target / SUBGOAL_SCALE_M)
        return self.config.head.subgoal_weight * err, {"subgoal_rmse_m": float(err.detach().sqrt()) * SUBGOAL_SCALE_M}

    def predict_actions(self, batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
        """(B, T, A, 7) unnormalized actions."""
        feats = self.encode(batch, modalities)
        arm, grip_logit = self.head.predict(feats["action_hidden"])
        return self.actions.unnormalize(arm, torch.sigmoid(grip_logit))

    def head_loss(self, feats: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        target_arm, target_grip = self.actions.normalize(batch["action"])
        return self.head.loss(feats["action_hidden"], target_arm, target_grip, batch.get("action_pad"))

    def postprocess(self, actions, obs: Observation):
        """(T, A, 7) raw actions of one inference -> the ones to publish (e.g. an ensembler); identity here."""
        return actions

    # --- shared processing --------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def observation_to_batch(self, obs: Observation) -> dict:
        cfg = self.config
        return observation_to_batch(obs, cfg.camera_names, cfg.image_size, cfg.proprio_dim, self.device,
                                    cfg.proprio_names)
