"""FALCON configuration (`method_args` of a falcon PolicyConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vla_ros.core.config import check, check_range
from vla_ros.policies.spatial_model.esm import ESMConfig


@dataclass
class FalconReferenceArgs:
    """The released FALCON (RoboVLMs + Kosmos-2 + ESM). Kosmos-2 comes from a local folder (`vlm.kind` "hf",
    `vlm.path`) or, for a model trained here from scratch, from `kosmos2` (same classes, small widths). Args:
    head: "fc" (FCDecoder(_ESM), max pooling of the ESM tokens) or "lstm" (LSTMDecoder(_ESM), mean pooling, the
        ESM over the window's frames jointly). The chunk size (fwd_pred_next_n) is the policy's `horizon`.
    use_esm: False = stage 1 (plain FCDecoder/LSTMDecoder, no ESM, no injector); True = the *_ESM heads.
    window: frames per sample (history_type "post": each frame encoded by Kosmos-2 on its own); FC 1, LSTM 16.
        W > 1: a training sample holds W consecutive frames (EpisodeDataset's window), each with its own chunk,
        and the loss covers every frame, as RoboVLMs' over the window.
    hidden_size: the head width (1024); mlp_widths: MLPTanhHead's ([1024, 512, 256]);
    injector_widths: PCDInjector_V1's ([512, 1024]); lstm_layers: 4.
    camera_gt_pt / depth_gt_pt: fraction of the frames given the ground-truth pose / depth (the ESM's
        `inference`: round(S * pt) frames, frame 0 first; 0 in the released configs = RGB only). Always so at
        inference (among the modalities present and asked for).
    esm_gt: how those frames are chosen in training: "fraction" (the reference action heads call the ESM's
        `inference` in training too) or "random" (the ESM's own training draw, per batch: with p 0.33 none, else
        k ~ U{0..S}: frames 0..k-1 get the pose; frame 0 + k-1 random others the depth).
    arm_loss: "huber" (the reference, F.huber_loss delta huber_delta=1) or "mse"; gripper_weight: BCE weight
        (arm_gripper_loss_ratio 0.01).
    action_norm: "none" (norm_action false), "clip" (CALVIN: arm dims clipped to norm_bounds and mapped to
        [-1, 1]; the gripper not normalised), "q01_q99" (the SimplerEnv wrappers of the OXE checkpoints:
        0.5 (a + 1)(q99 - q01) + q01 where action_mask, from the dataset statistics: action_q01 / action_q99 /
        action_mask, 7 values each) or "stats" (vla_ros NormStats, not the reference).
    rotation: the 3 rotation values of an action: "euler_xyz" (the reference data: roll, pitch, yaw; turned into
        the rotation vector of ActionChunk as SimplerEnv's euler2axangle does) or "rotvec" (vla_ros datasets).
    execute_steps: steps of each chunk to execute; 0 = the reference (FC: the whole chunk, LSTM: 1).
    accumulate_deltas: the reference's actions are per-step deltas (each on the previous step, as SimplerEnv's
        target-delta controller and CALVIN apply them); a delta_measured chunk holds each step relative to the
        observation's pose, so with this on the steps are composed (p_j = sum dp, R_j = dR_j ... dR_1).
    prompt: the Kosmos-2 prompt ("{}" = the instruction).
    depth_mask_all_ones: give the ESM an all-ones depth mask (the reference's CALVIN loader does, zeros and
        invalid pixels included); default: the sensor's validity mask.
    stage: 1 (full fine-tune, no ESM) or 2 (from stage 1: ESM frozen, action-head MLPs frozen, injector and VLM
        trained); train_vision / train_text_embedding: the reference's train_setup (both true). 0: grounded-text
        pretraining of an inline Kosmos-2 before stage 1 (a departure for training from scratch, where no
        pretrained Kosmos-2 exists: grounding_falcon.py; only the backbone trains; needs use_esm false, an inline
        kosmos2 and the byte tokenizer).
    grounding_grid: stage 0's image partition (grid x grid cells, 2-10: one digit each).
    kosmos2: Kosmos-2 built here, not read from a folder (`vlm.kind` "tiny"; vlm's tiny sizes are not used):
        transformers' Kosmos2Config arguments text_config, vision_config (both dicts) and latent_query_num,
        e.g. small widths for training from scratch; vision_config's image_size / patch_size default to the
        policy's image_size / vlm.patch_size. {} = `vlm.path`'s config.json.
    kosmos2_init: how an inline `kosmos2` starts (a folder's or a checkpoint's weights replace it either way):
        "reference" (transformers' Kosmos-2 initialisation) or "spatial" (a departure for training from scratch:
        2-D sin-cos patch position embeddings, and the resampler's cross-attention sharp and image-led at the
        start; with the reference initialisation a small Kosmos-2 trained from scratch passes almost nothing of
        the image through its 16-64 latent queries: README, FALCON section).
    tokenizer: "folder" (the Kosmos-2 folder's, XLM-R sentencepiece in the release) or "bytes" (built here, no
        files: Kosmos-2's special tokens <s> <pad> </s> <unk> <grounding> = ids 0-4, then the 256 bytes; needs
        text_config.vocab_size >= 261). A checkpoint of an inline Kosmos-2 thus needs no other file.
    preprocess: the images at inference: "reference" (the released evaluation: Kosmos-2 gets the frame
        stretched to image_size with PIL bicubic, the ESM the frame centre-padded to a square, then resized) or
        "vla_ros" (what training on a vla_ros dataset gives both: the frame stretched with cv2 INTER_AREA, K
        rescaled, depth nearest; for a model trained here).
    init_from: stage 2: the stage-1 checkpoint (a vla_ros checkpoint folder of this architecture with use_esm
        false) whose backbone, action token and head MLPs start the run; only the injector (and the ESM, from
        esm_checkpoint) may be missing from it, anything else missing or unexpected is named. Stage 1: a stage-0
        checkpoint, the same way.
    """

    head: Literal["fc", "lstm"] = "fc"
    use_esm: bool = True
    window: int = 1
    hidden_size: int = 1024
    mlp_widths: list[int] = field(default_factory=lambda: [1024, 512, 256])
    injector_widths: list[int] = field(default_factory=lambda: [512, 1024])
    lstm_layers: int = 4
    camera_gt_pt: float = 0.0
    depth_gt_pt: float = 0.0
    esm_gt: Literal["fraction", "random"] = "fraction"
    arm_loss: Literal["huber", "mse"] = "huber"
    huber_delta: float = 1.0
    gripper_weight: float = 0.01
    action_norm: Literal["none", "clip", "q01_q99", "stats"] = "none"
    norm_bounds: list[float] = field(default_factory=lambda: [-0.65, 0.65])
    action_q01: list[float] = field(default_factory=list)
    action_q99: list[float] = field(default_factory=list)
    action_mask: list[bool] = field(default_factory=list)
    rotation: Literal["euler_xyz", "rotvec"] = "euler_xyz"
    execute_steps: int = 0
    accumulate_deltas: bool = True
    prompt: str = "<grounding>An image of a robot {}"
    depth_mask_all_ones: bool = False
    stage: int = 2
    train_vision: bool = True
    train_text_embedding: bool = True
    init_from: str = ""
    kosmos2: dict = field(default_factory=dict)
    kosmos2_init: Literal["reference", "spatial"] = "reference"
    grounding_grid: int = 8
    tokenizer: Literal["folder", "bytes"] = "folder"
    preprocess: Literal["reference", "vla_ros"] = "reference"

    def __post_init__(self):
        check(self.head in ("fc", "lstm"), "head", self.head, "expected 'fc' or 'lstm'")
        check(self.esm_gt in ("fraction", "random"), "esm_gt", self.esm_gt, "expected 'fraction' or 'random'")
        check(self.arm_loss in ("huber", "mse"), "arm_loss", self.arm_loss, "expected 'huber' or 'mse'")
        check(self.action_norm in ("none", "clip", "q01_q99", "stats"), "action_norm", self.action_norm,
              "expected 'none', 'clip', 'q01_q99' or 'stats'")
        check(self.action_norm != "q01_q99" or (len(self.action_q01) == len(self.action_q99) == 7
                                                 and len(self.action_mask) == 7), "action_q01", self.action_q01,
              "q01_q99 needs action_q01, action_q99 and action_mask of 7 values each")
        check(self.rotation in ("euler_xyz", "rotvec"), "rotation", self.rotation, "expected 'euler_xyz' or 'rotvec'")
        check_range("window", self.window, 1, 256)
        check_range("camera_gt_pt", self.camera_gt_pt, 0.0, 1.0)
        check_range("depth_gt_pt", self.depth_gt_pt, 0.0, 1.0)
        check(len(self.injector_widths) == 2, "injector_widths", self.injector_widths, "expected 2 widths")
        check(len(self.norm_bounds) == 2 and self.norm_bounds[0] < self.norm_bounds[1], "norm_bounds",
              self.norm_bounds, "expected [low, high] with low < high")
        check(self.stage in (0, 1, 2), "stage", self.stage, "expected 0, 1 or 2")
        check(self.stage != 0 or (not self.use_esm and bool(self.kosmos2) and self.tokenizer == "bytes"), "stage", 0,
              "grounded pretraining (stage 0) is for an inline kosmos2 with the byte tokenizer and use_esm false")
        check_range("grounding_grid", self.grounding_grid, 2, 10)
        check(self.stage != 2 or self.use_esm, "use_esm", self.use_esm, "stage 2 trains the ESM injector")
        check(self.tokenizer in ("folder", "bytes"), "tokenizer", self.tokenizer, "expected 'folder' or 'bytes'")
        check(self.preprocess in ("reference", "vla_ros"), "preprocess", self.preprocess,
              "expected 'reference' or 'vla_ros'")
        check(self.kosmos2_init in ("reference", "spatial"), "kosmos2_init", self.kosmos2_init,
              "expected 'reference' or 'spatial'")
        check(self.kosmos2_init == "reference" or bool(self.kosmos2), "kosmos2_init", self.kosmos2_init,
              "'spatial' initialises an inline kosmos2 (trained from scratch); a folder's Kosmos-2 has its weights")
        check(not self.kosmos2 or self.tokenizer == "bytes", "tokenizer", self.tokenizer,
              "an inline kosmos2 has no folder to read a tokenizer from: use 'bytes'")


@dataclass
class FalconConfig:
    """Args:
    architecture: "reference" (the released FALCON: Kosmos-2, its action heads, see FalconReferenceArgs) or
        "compact" (the small vla_ros model of the bundled sim checkpoints: tiny VLM + adapter; configs
        config/train/sim_falcon*_compact.yaml; their retraining as "reference": config/train/sim_falcon*.yaml).
    esm: the Embodied Spatial Model's sizes (ESMConfig.vggt_1b(point_head=False) for the released esm-1b).
    esm_checkpoint: local file (.safetensors or .pt) with VGGT-1B or FALCON ESM weights, or an ESM folder;
        '' = from scratch (or the checkpoint provides them).
    reference: the reference architecture's settings.
    Compact only: p_drop_depth / p_drop_pose: probability that depth / pose is withheld per training sample;
    pool: "max", "mean", or "auto" (max for the MLP head, mean for the LSTM head); adapter_hidden: the adapter
    MLP width (its last layer zero-initialised); stage / freeze: `freeze[str(stage)]` lists parameter-name
    prefixes frozen in that stage.
    """

    architecture: Literal["reference", "compact"] = "reference"
    esm: ESMConfig = field(default_factory=ESMConfig)
    esm_checkpoint: str = ""
    reference: FalconReferenceArgs = field(default_factory=FalconReferenceArgs)
    p_drop_depth: float = 0.33
    p_drop_pose: float = 0.33
    pool: str = "auto"
    adapter_hidden: int = 128
    stage: int = 1
    freeze: dict[str, list[str]] = field(default_factory=lambda: {"1": ["esm."], "2": []})

    def __post_init__(self):
        check(self.architecture in ("reference", "compact"), "architecture", self.architecture,
              "expected 'reference' or 'compact'")
        check_range("p_drop_depth", self.p_drop_depth, 0.0, 1.0)
        check_range("p_drop_pose", self.p_drop_pose, 0.0, 1.0)
        check(self.pool in ("auto", "max", "mean"), "pool", self.pool, "expected 'auto', 'max' or 'mean'")
        check(str(self.stage) in self.freeze, "stage", self.stage, f"no freeze list for it in {list(self.freeze)}")
        check_range("adapter_hidden", self.adapter_hidden, 1, 65536)
