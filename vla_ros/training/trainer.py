"""The train loop: seeded, tqdm progress, periodic validation loss and checkpoint, resume, and multi-process
data parallel when started by `torchrun` (gloo on CPU, nccl on CUDA) — the same command on one or many GPUs.
"""
from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vla_ros.core.config import check, check_range, from_dict, to_dict
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import make_policy
from vla_ros.training.checkpoint import load_checkpoint, save_checkpoint


@dataclass
class TrainConfig:
    """Args:
    policy: PolicyConfig fields (method, sizes, modalities, method_args).
    dataset: dataset folder (vla_ros dataset format); '' = synthetic batches.
    out: output folder (checkpoint/, train_state.pt, metrics.jsonl).
    steps, batch_size, lr, weight_decay, grad_clip, seed: optimisation.
    eval_every / ckpt_every: steps between validation losses / checkpoints. val_batches: batches per eval.
    device: cpu or cuda. resume: continue from out/ when a train_state.pt is there.
    """

    policy: dict = field(default_factory=lambda: {"method": "baseline"})
    dataset: str = ""
    out: str = "runs/train"
    steps: int = 200
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 50
    ckpt_every: int = 100
    val_batches: int = 2
    val_fraction: float = 0.1
    num_workers: int = 0
    device: str = "cpu"
    resume: bool = True

    def __post_init__(self):
        check_range("steps", self.steps, 1, 10_000_000)
        check_range("batch_size", self.batch_size, 1, 65536)
        check_range("lr", self.lr, 0.0, 1.0)
        check(self.device in ("cpu", "cuda"), "device", self.device, "expected cpu or cuda")


class _LossModule(nn.Module):
    """DDP wraps a module's forward; the policy's forward is its loss."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, batch):
        return self.policy.compute_loss(batch)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _dist():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return world, rank


def make_data(cfg: TrainConfig, pcfg: PolicyConfig, world: int, rank: int):
    """(train iterator factory, val batches, norm stats)."""
    from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats

    if not cfg.dataset:
        def train_iter():
            i = 0
            while True:
                yield synthetic_batch(pcfg, cfg.batch_size, seed=cfg.seed * 1_000_003 + i * world + rank)
                i += 1
        val = [synthetic_batch(pcfg, cfg.batch_size, seed=-1 - i + 2**31) for i in range(cfg.val_batches)]
        return train_iter, val, synthetic_norm_stats(pcfg)
    from vla_ros.data.torch_dataset import EpisodeDataset, collate

    kw = {"cameras": pcfg.camera_names, "ref_quat": pcfg.rotation_ref_quat_xyzw}
    train_ds = EpisodeDataset(cfg.dataset, pcfg.horizon, pcfg.image_size, "train", cfg.val_fraction, cfg.seed, **kw)
    val_ds = EpisodeDataset(cfg.dataset, pcfg.horizon, pcfg.image_size, "val", cfg.val_fraction, cfg.seed, **kw)
    sampler = (torch.utils.data.distributed.DistributedSampler(train_ds, world, rank, seed=cfg.seed)
               if world > 1 else torch.utils.data.RandomSampler(train_ds, generator=torch.Generator().manual_seed(
                   cfg.seed)))
    loader = torch.utils.data.DataLoader(train_ds, cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                                         collate_fn=collate, drop_last=len(train_ds) >= cfg.batch_size)

    def train_iter():
        epoch = 0
        while True:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            yield from loader
            epoch += 1
    val_loader = torch.utils.data.DataLoader(val_ds, cfg.batch_size, shuffle=False, collate_fn=collate)
    val = [b for _, b in zip(range(cfg.val_batches), val_loader)]
    return train_iter, val, train_ds.norm_stats


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    world, rank = _dist()
    _seed_all(cfg.seed)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cfg.device == "cuda" else torch.device("cpu")
    out = Path(cfg.out)
    pcfg = from_dict(PolicyConfig, cfg.policy, "policy")
    train_iter, val, norm_stats = make_data(cfg, pcfg, world, rank)
    state_path = out / "train_state.pt"
    start = 0
    if cfg.resume and state_path.exists() and (out / "checkpoint").exists():
        policy = load_checkpoint(out / "checkpoint", str(device)).train()
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        start = state["step"]
    else:
        policy = make_policy(pcfg, norm_stats).to(device)
        if hasattr(policy, "fit_tokenizer") and cfg.dataset:
            policy.fit_tokenizer(_actions_for_fit(val, train_iter))
        state = None
    module = _LossModule(policy)
    if world > 1:
        module = nn.parallel.DistributedDataParallel(module, find_unused_parameters=True)
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(
        math.pi * min(s, cfg.steps) / cfg.steps)))
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
    metrics_file = out / "metrics.jsonl"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc=f"train {pcfg.method}", unit="step", dynamic_ncols=True)
    it = train_iter()
    last = {}
    for step in range(start, cfg.steps):
        policy.train()
        loss, metrics = module(_to(next(it), device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        last = {"step": step + 1, **metrics}
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            last["val_loss"] = evaluate(policy, val, device)
        if rank == 0:
            if "val_loss" in last or done % 10 == 0:
                with open(metrics_file, "a") as f:
                    f.write(json.dumps(last) + "\n")
            if done % cfg.ckpt_every == 0 or done == cfg.steps:
                save_checkpoint(policy, out / "checkpoint", {"train": to_dict(cfg)})
                torch.save({"step": done, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                            "torch_rng": torch.get_rng_state()}, state_path)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", **({"val": f"{last['val_loss']:.4f}"}
                                                                  if "val_loss" in last else {}))
    if bar is not None:
        bar.close()
    if world > 1:
        torch.distributed.barrier()
    return last


@torch.no_grad()
def evaluate(policy, batches: list[dict], device) -> float:
    policy.eval()
    losses = [float(policy.compute_loss(_to(b, device))[0]) for b in batches]
    return float(np.mean(losses)) if losses else float("nan")


def _actions_for_fit(val, train_iter, n_batches: int = 8) -> np.ndarray:
    it = train_iter()
    acts = [next(it)["action"] for _ in range(n_batches)] + [b["action"] for b in val]
    return torch.cat([a.reshape(-1, a.shape[-2] * a.shape[-1]) for a in acts]).numpy()
