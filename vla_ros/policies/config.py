"""Typed policy configuration shared by every method (method-specific arguments live in `method_args`,
validated by the method's own configuration class)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vla_ros.core.config import check, check_range
from vla_ros.core.constants import MODALITY_SETS, REFERENCES


@dataclass
class VLMConfig:
    """Vision-language backbone. Args:
    kind: "tiny" (built here) or "hf" (a Kosmos-2 / PaliGemma-class model from `path`, local files only).
    path: local folder of the HF model (kind "hf").
    width, depth, heads, patch_size, vocab_size, max_text_tokens: tiny backbone sizes.
    vision: the tiny backbone's image encoder: "patch" (a ViT patch embedding) or "conv_keypoints" (a small conv
        tower whose features, modulated by the instruction (FiLM), give the patch-grid tokens and, through a
        spatial softmax, one token of `keypoints` image coordinates per camera). From scratch, on a few thousand
        scenes, the ViT did not learn where a block is in 2000 steps; the conv tower did in 250 (the inductive
        bias of data-efficient visuomotor policies: Levine et al. 2016, robomimic, Diffusion Policy).
    keypoints: spatial-softmax channels of "conv_keypoints".
    """

    kind: Literal["tiny", "hf"] = "tiny"
    path: str = ""
    width: int = 96
    depth: int = 3
    heads: int = 4
    patch_size: int = 8
    vocab_size: int = 1024
    max_text_tokens: int = 12
    vision: Literal["patch", "conv_keypoints"] = "patch"
    keypoints: int = 32

    def __post_init__(self):
        check(self.kind in ("tiny", "hf"), "kind", self.kind, "expected 'tiny' or 'hf'")
        check(self.vision in ("patch", "conv_keypoints"), "vision", self.vision, "expected patch or conv_keypoints")
        check(self.vision != "conv_keypoints" or self.patch_size % 2 == 0, "patch_size", self.patch_size,
              "conv_keypoints pools a stride-2 map to the patch grid: use an even patch_size")
        check_range("keypoints", self.keypoints, 1, 1024)
        check(self.kind != "hf" or bool(self.path), "path", self.path, "kind 'hf' needs a local model folder")
        check(self.width % self.heads == 0, "width", self.width, f"must be divisible by heads={self.heads}")
        check_range("depth", self.depth, 1, 64)


@dataclass
class HeadConfig:
    """Action head. Args:
    kind: "mlp" (a chunk of `horizon` actions at once) or "lstm" (over a history window of action tokens).
    hidden: hidden width. history: LSTM window. gripper_weight: BCE weight.
    arm_loss: "mse" (the reference) or "huber" (huber_delta, in normalized units). A small delta makes the arm's
        gradient tiny next to the gripper's BCE: in simulation a Huber(0.1) policy learned when to close the
        gripper but not where to move it.
    subgoal_weight: weight of an auxiliary training loss (0 = off): from the action token, predict where the next
        gripper event (the grasp, then the release) happens, relative to the pose measured at the observation.
        Every frame then carries the "where is the object" signal that only the first frames of a chunk loss
        do; it is not used at inference.
    """

    kind: Literal["mlp", "lstm"] = "mlp"
    hidden: int = 256
    history: int = 4
    arm_loss: Literal["huber", "mse"] = "mse"
    huber_delta: float = 0.1
    gripper_weight: float = 0.5
    subgoal_weight: float = 0.0

    def __post_init__(self):
        check(self.kind in ("mlp", "lstm"), "kind", self.kind, "expected 'mlp' or 'lstm'")
        check(self.arm_loss in ("huber", "mse"), "arm_loss", self.arm_loss, "expected 'huber' or 'mse'")
        check_range("history", self.history, 1, 64)
        check_range("subgoal_weight", self.subgoal_weight, 0.0, 100.0)


@dataclass
class PolicyConfig:
    """Everything needed to rebuild a policy (saved as config.yaml in the checkpoint).

    Args:
        method: baseline | falcon | spatial_forcing | spatialvla | spatialvla_legacy.
        name: checkpoint name reported in ActionChunk.policy_name.
        camera_names: cameras the model reads, in order.
        image_size: square model input size (images are resized, K rescaled to match).
        proprio_dim: length of the proprio vector.
        proprio_names: joints the model reads, by name, out of the robot's joint states ([] = all of them, in the
            robot config's order). E.g. only the gripper: arm joints let a policy trained by imitation copy its
            own recent motion instead of looking (the "copycat" shortcut), and VLAs such as OpenVLA and
            SpatialVLA read no proprio at all.
        arm_names: arms in the action (7 values each: xyz m, rotation vector rad, gripper [0, 1]).
        horizon: steps per chunk. dt_s: step period.
        action_reference: absolute | delta_target | delta_measured.
        rotation_ref_quat_xyzw: rotations are predicted relative to this orientation (tool-down for tabletop
            arms keeps them small and continuous).
        modalities: inputs the model may use: rgb, rgbd or rgbd_pose (what is fresh decides per inference).
        vlm, head: backbone and head configs. method_args: the method's own config (see its folder).
    """

    method: str = "baseline"
    name: str = "tiny"
    camera_names: list[str] = field(default_factory=lambda: ["front"])
    image_size: int = 64
    proprio_dim: int = 8
    proprio_names: list[str] = field(default_factory=list)
    arm_names: list[str] = field(default_factory=lambda: ["arm"])
    horizon: int = 4
    dt_s: float = 0.1
    action_reference: str = "absolute"
    rotation_ref_quat_xyzw: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 1.0])
    modalities: str = "rgbd_pose"
    vlm: VLMConfig = field(default_factory=VLMConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    method_args: dict = field(default_factory=dict)

    def __post_init__(self):
        check(self.action_reference in REFERENCES, "action_reference", self.action_reference, f"one of {REFERENCES}")
        check(self.modalities in MODALITY_SETS, "modalities", self.modalities, f"one of {list(MODALITY_SETS)}")
        check(len(self.rotation_ref_quat_xyzw) == 4, "rotation_ref_quat_xyzw", self.rotation_ref_quat_xyzw,
              "expected 4 numbers")
        check_range("image_size", self.image_size, 8, 1024)
        check(not self.proprio_names or len(self.proprio_names) == self.proprio_dim, "proprio_names",
              self.proprio_names, f"must name proprio_dim={self.proprio_dim} joints")
        check_range("horizon", self.horizon, 1, 256)
        check_range("dt_s", self.dt_s, 1e-3, 10.0)
        check(self.image_size % self.vlm.patch_size == 0, "image_size", self.image_size,
              f"must be a multiple of vlm.patch_size={self.vlm.patch_size}")

    @property
    def action_dim(self) -> int:
        return 7 * len(self.arm_names)
