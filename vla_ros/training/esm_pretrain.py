"""Geometry pretraining of an Embodied Spatial Model, as VGGT is trained: the depth head is supervised with
metric depth (confidence-weighted L1, VGGT's aleatoric form) and the camera head with the camera pose (Huber on
the 9-d pose encoding, every refinement iteration, later ones weighted more). Like FALCON's ESM, depth and pose
inputs are withheld at random so one model works with and without them. The result (model.safetensors with
VGGT key names + config.yaml) serves as FALCON's spatial model and Spatial Forcing's teacher.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from vla_ros.core.config import check, check_range, to_dict
from vla_ros.policies.falcon.processing_falcon import esm_inputs, sample_injection
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig, pose_encoding, pose_encoding_vggt

ESM_WEIGHTS, ESM_CONFIG = "model.safetensors", "config.yaml"


def _tiny_esm() -> ESMConfig:
    return ESMConfig(embed_dim=64, heads=4, depth=2, patch_size=8, img_size=64, dino_depth=1, camera_head=True,
                     depth_head=True, pose_frame="base", input_convention="legacy", pos_embed_antialias=False)


@dataclass
class ESMPretrainConfig:
    """Args:
    esm: the model (its camera_head and depth_head must be on). Its input_convention decides how the depth and
        pose inputs enter ("vggt": FALCON's reference, what the reference FALCON architecture feeds it; "legacy":
        the bundled sim_esm's); either way the camera head learns the pose in `esm.pose_frame` ("base": in the
        robot base frame, which a single frame's first-camera-relative pose would reduce to the identity).
    dataset: vla_ros dataset folder(s) (images, depth, intrinsics, camera poses). camera: which camera.
    out: output folder. image_size: square input size.
    steps, batch_size, lr, weight_decay, seed, eval_every: optimisation.
    p_drop_depth / p_drop_pose: probability that the depth / pose input is withheld per sample.
    depth_weight / camera_weight: loss weights. conf_alpha: weight of the -log(confidence) term.
    """

    esm: ESMConfig = field(default_factory=_tiny_esm)
    dataset: str | list[str] = ""
    camera: str = ""
    out: str = "runs/esm"
    image_size: int = 64
    steps: int = 1000
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    seed: int = 0
    eval_every: int = 100
    p_drop_depth: float = 0.5
    p_drop_pose: float = 0.5
    depth_weight: float = 1.0
    camera_weight: float = 1.0
    conf_alpha: float = 0.2

    def __post_init__(self):
        check(self.esm.camera_head and self.esm.depth_head, "esm.camera_head", self.esm.camera_head,
              "pretraining supervises the camera and depth heads: set esm.camera_head and esm.depth_head true")
        check(bool(self.dataset), "dataset", self.dataset, "a dataset folder is needed")
        check_range("steps", self.steps, 1, 10_000_000)
        check_range("batch_size", self.batch_size, 1, 65536)
        check_range("p_drop_depth", self.p_drop_depth, 0.0, 1.0)
        check_range("p_drop_pose", self.p_drop_pose, 0.0, 1.0)


def pretrain_inputs(batch: dict, use_depth: torch.Tensor, use_pose: torch.Tensor, esm: ESMConfig) -> dict:
    """The aggregator's optional inputs in the model's input convention: "legacy" (the pose in `pose_frame`) or
    "vggt" (FALCON's: the depth as given, divided by its mean valid value inside the aggregator; the pose
    relative to the first frame, VGGT's absT_quaR_FoV, replacing the camera token)."""
    if esm.input_convention == "legacy":
        return esm_inputs(batch, use_depth, use_pose, esm.pose_frame)
    T = batch["T_base_camera"].float()
    ok = batch["pose_valid"].bool().reshape(-1, 1) & torch.isfinite(T).flatten(2).all(2)  # (B, S)
    T = torch.where(ok[..., None, None], torch.nan_to_num(T), torch.eye(4, device=T.device))
    return {"depth": batch["depth_m"], "depth_valid": batch["depth_valid"], "depth_on": use_depth,
            "pose9": pose_encoding_vggt(T, batch["K"].float(), tuple(batch["rgb"].shape[-2:])),
            "pose_on": use_pose[:, None] & ok}


def geometry_losses(model: EmbodiedSpatialModel, batch: dict, use_depth, use_pose, cfg: ESMPretrainConfig
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    rgb = batch["rgb"]
    hw = tuple(rgb.shape[-2:])
    out = model(rgb, **pretrain_inputs(batch, use_depth, use_pose, cfg.esm))
    valid = batch["depth_valid"]
    gt, pred, conf = batch["depth_m"], out["depth_m"], out["depth_conf"]
    n = valid.sum().clamp(min=1)
    err = (pred - gt).abs()
    depth_loss = ((conf * err - cfg.conf_alpha * conf.log()) * valid).sum() / n
    target = pose_encoding(batch["T_base_camera"].float(), batch["K"].float(), hw, cfg.esm.pose_frame)
    iters = out["pose_enc_list"]
    weights = [0.6 ** (len(iters) - 1 - i) for i in range(len(iters))]
    cam_loss = sum(w * F.huber_loss(p, target, delta=0.1) for w, p in zip(weights, iters)) / sum(weights)
    final = out["pose_enc"].detach()
    dot = (final[..., 3:7] / final[..., 3:7].norm(dim=-1, keepdim=True).clamp(min=1e-8) * target[..., 3:7]).sum(-1)
    err = err.detach()
    metrics = {"depth_mae_m": float((err * valid).sum() / n),
               "depth_abs_rel": float(((err / gt.clamp(min=1e-3)) * valid).sum() / n),
               "cam_t_err_m": float((final[..., :3] - target[..., :3]).norm(dim=-1).mean()),
               "cam_rot_err_deg": float(torch.rad2deg(2 * torch.acos(dot.abs().clamp(max=1.0))).mean()),
               "depth_loss": float(depth_loss.detach()), "camera_loss": float(cam_loss.detach())}
    return cfg.depth_weight * depth_loss + cfg.camera_weight * cam_loss, metrics


def save_esm(model: EmbodiedSpatialModel, directory: str | Path, extra: dict | None = None) -> Path:
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(d / ESM_WEIGHTS), metadata={"format": "vla_ros/esm/1"})
    (d / ESM_CONFIG).write_text(yaml.safe_dump({"esm": to_dict(model.cfg), **(extra or {})}, sort_keys=False))
    return d


@torch.no_grad()
def _validate(model, batches, cfg) -> dict[str, float]:
    model.eval()
    rows = []
    for b in batches:
        B, dev = b["rgb"].shape[0], b["rgb"].device
        off = torch.zeros(B, dtype=torch.bool, device=dev)  # RGB only: the hardest case, and Spatial Forcing's
        rows.append(geometry_losses(model, b, off, off, cfg)[1])
    model.train()
    return {f"val_{k}": float(np.mean([r[k] for r in rows])) for k in rows[0]}


def pretrain(cfg: ESMPretrainConfig, progress: bool = True) -> dict:
    """Train, validate every `eval_every` steps (RGB-only inputs), save to `cfg.out`; returns the last metrics."""
    from vla_ros.data.torch_dataset import EpisodeDataset
    from vla_ros.training.trainer import collate, draw_batches, warmup_cosine

    torch.manual_seed(cfg.seed)
    cams = [cfg.camera] if cfg.camera else None
    train_ds = EpisodeDataset(cfg.dataset, 1, cfg.image_size, "train", 0.1, cfg.seed, cams)
    val_ds = EpisodeDataset(cfg.dataset, 1, cfg.image_size, "val", 0.1, cfg.seed, cams)
    if f"depth_m__{train_ds.cameras[0]}" not in train_ds.episodes[0]:
        raise ValueError(f"{cfg.dataset}: camera {train_ds.cameras[0]!r} has no depth to supervise with")
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(train_ds, cfg.batch_size, shuffle=True, generator=gen, collate_fn=collate,
                                         drop_last=len(train_ds) >= cfg.batch_size)
    val = draw_batches(val_ds, cfg.batch_size, 4, cfg.seed)
    model = EmbodiedSpatialModel(cfg.esm)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = warmup_cosine(opt, cfg.steps)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "metrics.jsonl", "w")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc="pretrain-esm", unit="step", dynamic_ncols=True)
    step, last = 0, {}
    while step < cfg.steps:
        for batch in loader:
            B = batch["rgb"].shape[0]
            has_depth = batch["depth_valid"].flatten(1).any(1)
            use_d = sample_injection(B, cfg.p_drop_depth, has_depth, gen)
            use_p = sample_injection(B, cfg.p_drop_pose, batch["pose_valid"].bool(), gen)
            loss, metrics = geometry_losses(model, batch, use_d, use_p, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            last = {"step": step, "loss": float(loss.detach()), **metrics}
            if step % cfg.eval_every == 0 or step == cfg.steps:
                last.update(_validate(model, val, cfg))
            if "val_depth_mae_m" in last or step % 10 == 0:
                log.write(json.dumps(last) + "\n")
                log.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last['loss']:.3f}", depth=f"{metrics['depth_mae_m']:.3f}")
            if step >= cfg.steps:
                break
    log.close()
    if bar is not None:
        bar.close()
    save_esm(model, out, {"pretrain": {k: v for k, v in to_dict(cfg).items() if k != "esm"}, "final": last})
    return last
