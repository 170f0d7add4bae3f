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
from vla_ros.policies.checkpoint_io import load_checkpoint, save_checkpoint
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import make_policy, policy_class

STATE_FILE = "train_state.pt"  # in the run's out/: step, optimizer, scheduler, torch RNG (resume)
METRICS_FILE = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Args:
    policy: PolicyConfig fields (method, sizes, modalities, method_args).
    dataset: dataset folder (vla_ros dataset format), or a list of them; '' = synthetic batches.
    out: output folder (checkpoint/, train_state.pt, metrics.jsonl).
    steps, batch_size, lr, weight_decay, grad_clip, seed: optimisation.
    eval_every / ckpt_every: steps between validation losses / checkpoints. val_batches: batches per eval.
    device: cpu or cuda. resume: continue from out/ when a train_state.pt is there.
    init_from: a checkpoint folder whose weights, norm stats and tokenizer start a fresh run (fine-tuning, e.g.
        on added demonstrations); its policy config must equal `policy` (a fitted tokenizer grid aside).
    augment_shift_px: random-shift image augmentation of the training split (pixels at the model's input size).
    """

    policy: dict = field(default_factory=lambda: {"method": "baseline"})
    dataset: str | list[str] = ""
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
    augment_shift_px: int = 0
    num_workers: int = 0
    device: str = "cpu"
    resume: bool = True
    init_from: str = ""

    def __post_init__(self):
        check_range("steps", self.steps, 1, 10_000_000)
        check_range("batch_size", self.batch_size, 1, 65536)
        check_range("lr", self.lr, 0.0, 1.0)
        check(self.device in ("cpu", "cuda"), "device", self.device, "expected cpu or cuda")
        check_range("eval_every", self.eval_every, 1)
        check_range("ckpt_every", self.ckpt_every, 1)
        check_range("val_fraction", self.val_fraction, 0.0, 1.0)
        check_range("augment_shift_px", self.augment_shift_px, 0, 64)
        from_dict(PolicyConfig, self.policy, "policy")  # names a bad policy key when the file is read


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


def collate(samples: list[dict]) -> dict:
    """Contract samples -> a batch: tensors stacked, strings kept as a list."""
    out = {}
    for k in samples[0]:
        vals = [s[k] for s in samples]
        out[k] = vals if isinstance(vals[0], str) else torch.stack([torch.as_tensor(v) for v in vals])
    return out


def norm_stats_from_samples(data, action_dim: int, max_samples: int = 4096):
    """NormStats over (up to) `max_samples` contract samples; gripper dims stay unnormalized."""
    from vla_ros.core.normalize import action_proprio_stats

    acts, props = [], []
    for i, sample in enumerate(data):
        if i >= max_samples:
            break
        keep = ~torch.as_tensor(sample.get("action_pad", torch.zeros(len(sample["action"]), dtype=torch.bool)))
        acts.append(torch.as_tensor(sample["action"])[keep].reshape(-1, action_dim))
        props.append(torch.as_tensor(sample["proprio"]).reshape(1, -1))
    if not acts:
        raise ValueError("training data is empty: cannot compute norm stats")
    return action_proprio_stats(torch.cat(acts).numpy(), torch.cat(props).numpy())


def draw_batches(data, batch_size: int, n: int, seed: int) -> list[dict]:
    """`n` batches of a seeded random draw across a dataset: the validation set (consecutive frames of one
    episode, what the first batches in order hold, say little about the others)."""
    return [b for _, b in zip(range(n), _loader(data, batch_size, True, seed, 1, 0, 0))]


def _loader(data, batch_size: int, shuffle: bool, seed: int, world: int, rank: int, num_workers: int):
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__") and \
            not isinstance(data, torch.utils.data.IterableDataset):
        if not shuffle:
            sampler = None
        elif world > 1:
            sampler = torch.utils.data.distributed.DistributedSampler(data, world, rank, seed=seed)
        else:
            sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(seed))
        return torch.utils.data.DataLoader(data, batch_size, sampler=sampler, num_workers=num_workers,
                                           collate_fn=collate, drop_last=shuffle and len(data) >= batch_size)
    return torch.utils.data.DataLoader(_Iterable(data), batch_size, collate_fn=collate)


class _Iterable(torch.utils.data.IterableDataset):
    def __init__(self, data):
        self.data = data

    def __iter__(self):
        return iter(self.data)


def make_data(cfg: TrainConfig, pcfg: PolicyConfig, world: int, rank: int, train_data=None, val_data=None,
              norm_stats=None, start_step: int = 0):
    """(train iterator factory, val batches, norm stats). Sources, first that applies: `train_data` (any
    Dataset or iterable of contract samples), `cfg.dataset` (an on-disk dataset), synthetic batches."""
    from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats

    if train_data is None and not cfg.dataset:
        def synthetic_iter():
            i = start_step
            while True:
                yield synthetic_batch(pcfg, cfg.batch_size, seed=cfg.seed * 1_000_003 + i * world + rank)
                i += 1
        val = [synthetic_batch(pcfg, cfg.batch_size, seed=-1 - i + 2**31) for i in range(cfg.val_batches)]
        return synthetic_iter, val, norm_stats or synthetic_norm_stats(pcfg)
    if train_data is None:
        from vla_ros.data.torch_dataset import EpisodeDataset  # the dataset format lives with the bag tools

        kw = {"cameras": pcfg.camera_names, "ref_quat": pcfg.rotation_ref_quat_xyzw,
              "reference": pcfg.action_reference, "proprio_names": pcfg.proprio_names,
              "window": policy_class(pcfg.method).sample_window(pcfg)}
        train_data = EpisodeDataset(cfg.dataset, pcfg.horizon, pcfg.image_size, "train", cfg.val_fraction, cfg.seed,
                                    shift_px=cfg.augment_shift_px, **kw)
        val_data = EpisodeDataset(cfg.dataset, pcfg.horizon, pcfg.image_size, "val", cfg.val_fraction, cfg.seed, **kw)
    if norm_stats is None:
        norm_stats = getattr(train_data, "norm_stats", None) or norm_stats_from_samples(train_data, pcfg.action_dim)
    loader = _loader(train_data, cfg.batch_size, True, cfg.seed, world, rank, cfg.num_workers)

    def train_iter():
        epoch = 0
        while True:
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            n = 0
            for batch in loader:
                n += 1
                yield batch
            if n == 0:
                raise ValueError("training data yielded no batch")
            epoch += 1
    val = []
    if val_data is not None:
        val = draw_batches(val_data, cfg.batch_size, cfg.val_batches, cfg.seed)
    return train_iter, val, norm_stats


def warmup_cosine(opt, steps: int, warmup: int = 20):
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `steps`."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(
        math.pi * min(s, steps) / steps)))


def train(cfg: TrainConfig, progress: bool = True, train_data=None, val_data=None, norm_stats=None) -> dict:
    """Run the loop; returns the last step's metrics (with val_loss). `train_data` / `val_data`: any Dataset or
    iterable of contract samples (else `cfg.dataset`, else synthetic batches); `norm_stats` defaults to the
    data's own (`.norm_stats`) or is computed from it."""
    world, rank = _dist()
    _seed_all(cfg.seed)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cfg.device == "cuda" else torch.device("cpu")
    out = Path(cfg.out)
    pcfg = from_dict(PolicyConfig, cfg.policy, "policy")
    state_path = out / STATE_FILE
    resuming = cfg.resume and state_path.exists() and (out / "checkpoint").exists()
    start = int(torch.load(state_path, map_location="cpu", weights_only=False)["step"]) if resuming else 0
    train_iter, val, norm_stats = make_data(cfg, pcfg, world, rank, train_data, val_data, norm_stats, start)
    policy, state = _start_policy(cfg, pcfg, device, resuming, train_iter, val, norm_stats)
    module = _LossModule(policy)
    if world > 1:
        module = nn.parallel.DistributedDataParallel(module, find_unused_parameters=True)
    params, opt, sched = _optimizer(cfg, policy, state)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if not resuming:  # a fresh run starts a fresh log (a resumed one appends)
            (out / METRICS_FILE).unlink(missing_ok=True)
    bar = _progress_bar(cfg, pcfg.method, start) if progress and rank == 0 else None
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
            last.update(evaluate(policy, val, device))
        if rank == 0:
            _record(cfg, policy, opt, sched, last, done)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}", **({"val": f"{last['val_loss']:.4f}"}
                                                                  if "val_loss" in last else {}))
    if bar is not None:
        bar.close()
    if world > 1:
        torch.distributed.barrier()
    return last


def _start_policy(cfg: TrainConfig, pcfg: PolicyConfig, device, resuming: bool, train_iter, val: list[dict],
                  norm_stats) -> tuple[nn.Module, dict | None]:
    """(policy, saved train state or None): resumed from out/, started from `init_from`, or fresh (a tokenizer
    fitted to the data's actions where the method has one)."""
    out = Path(cfg.out)
    if resuming:
        policy = load_checkpoint(out / "checkpoint", str(device)).train()
        return policy, torch.load(out / STATE_FILE, map_location="cpu", weights_only=False)
    if cfg.init_from:
        return _init_from(cfg.init_from, pcfg, device), None
    policy = make_policy(pcfg, norm_stats).to(device)
    if hasattr(policy, "fit_tokenizer"):  # grids / statistics fitted to the data (synthetic batches too)
        policy.fit_tokenizer(_actions_for_fit(val, train_iter))
    return policy, None


def _optimizer(cfg: TrainConfig, policy: nn.Module, state: dict | None):
    """(trainable params, AdamW, warm-up + cosine schedule), restored from `state` (with the torch RNG) if given."""
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = warmup_cosine(opt, cfg.steps)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
    return params, opt, sched


def _progress_bar(cfg: TrainConfig, method: str, start: int):
    from tqdm import tqdm

    return tqdm(total=cfg.steps, initial=start, desc=f"train {method}", unit="step", dynamic_ncols=True)


def _record(cfg: TrainConfig, policy: nn.Module, opt, sched, last: dict, done: int) -> None:
    """Rank 0 after step `done`: the metrics line (with validation, or every 10 steps), and the checkpoint and
    train state every `ckpt_every` steps and at the end."""
    out = Path(cfg.out)
    if "val_loss" in last or done % 10 == 0:
        with open(out / METRICS_FILE, "a") as f:
            f.write(json.dumps(last) + "\n")
    if done % cfg.ckpt_every == 0 or done == cfg.steps:
        save_checkpoint(policy, out / "checkpoint", {"train": to_dict(cfg)})
        torch.save({"step": done, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "torch_rng": torch.get_rng_state()}, out / STATE_FILE)


def _init_from(directory: str, pcfg: PolicyConfig, device) -> nn.Module:
    """The checkpoint's policy, ready to train on; its config must be the run's, or the differing keys are named."""
    policy = load_checkpoint(directory, str(device)).train()
    mine, theirs = to_dict(pcfg), to_dict(policy.config)
    fitted = getattr(policy, "FITTED_ARGS", ())  # method_args that fit_tokenizer derives from the data
    mine["method_args"] = {k: v for k, v in mine["method_args"].items() if k not in fitted}
    theirs["method_args"] = {k: v for k, v in theirs["method_args"].items() if k not in fitted}
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        raise ValueError(f"init_from: {directory} was trained with another policy config; differing keys: "
                         f"{', '.join('policy.' + k for k in diff)}")
    return policy


@torch.no_grad()
def evaluate(policy, batches: list[dict], device) -> dict[str, float]:
    """Mean validation metrics: val_loss (the training objective) and val_<metric> for every loss metric."""
    policy.eval()
    rows = [policy.compute_loss(_to(b, device))[1] for b in batches]
    if not rows:
        return {"val_loss": float("nan")}
    return {f"val_{k}": float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _actions_for_fit(val, train_iter, n_batches: int = 8) -> np.ndarray:
    """(steps, arms * 7) actions to fit a tokenizer or statistics to: `n_batches` training batches and the
    validation batches, padded steps left out. Under DDP rank 0 draws them and every rank gets the same, so
    every rank fits the same grid (each rank's loader sees another shard)."""
    acts = None
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        it = train_iter()
        batches = [next(it) for _ in range(n_batches)] + list(val)
        rows = []
        for b in batches:
            a = b["action"]
            pad = b.get("action_pad")
            steps = a[~pad.bool()] if pad is not None else a.reshape(-1, *a.shape[-2:])  # (n, arms, 7)
            rows.append(steps.reshape(-1, a.shape[-2] * a.shape[-1]))
        acts = torch.cat(rows).numpy()
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        box = [acts]
        torch.distributed.broadcast_object_list(box, src=0)
        acts = box[0]
    return acts
