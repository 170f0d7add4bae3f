"""Policy figures per method (tiny configs; paper-scale forward on CUDA when asked): forward time, Spatial
Forcing vs baseline at inference, training step vs pure forward+backward on a cached batch, memory."""
from __future__ import annotations

import time

import torch

from vla_ros.bench.stats import figure, peak_rss_mb, scalar, time_it
from vla_ros.core.constants import TINY_METHODS
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def forward_times(method: str, device: str, repeats: int, gap_s: float = 0.0) -> tuple[list[float], object]:
    torch.manual_seed(0)
    cfg = tiny_config(method)
    policy = make_policy(cfg, synthetic_norm_stats(cfg)).to(device).eval()
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in synthetic_batch(cfg, 1, seed=0).items()}
    mods = ("rgb", "depth", "pose")

    def fwd():
        with torch.no_grad():
            policy.predict_actions(batch, mods)
        _sync(device)
    return time_it(fwd, repeats, gap_s=gap_s), policy


def interleaved_ratio(a: str, b: str, device: str, pairs: int) -> float:
    """Median over pairs of forward time a / forward time b, measured alternately so drift cancels."""
    _, pa = forward_times(a, device, 1)
    _, pb = forward_times(b, device, 1)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in synthetic_batch(pa.config, 1, seed=0).items()}
    mods = ("rgb", "depth", "pose")
    ratios = []
    for i in range(pairs + 5):
        t = []
        for policy in (pa, pb) if i % 2 else (pb, pa):
            t0 = time.perf_counter()
            with torch.no_grad():
                policy.predict_actions(batch, mods)
            _sync(device)
            t.append((policy is pa, time.perf_counter() - t0))
        ta, tb = (x[1] for x in sorted(t, key=lambda x: not x[0]))
        if i >= 5:
            ratios.append(ta / tb)
    return float(torch.tensor(ratios).median())


def train_overhead(method: str, device: str, repeats: int) -> tuple[list[float], list[float]]:
    """(full step with batch generation, forward+backward on a cached batch) times."""
    torch.manual_seed(0)
    cfg = tiny_config(method)
    policy = make_policy(cfg, synthetic_norm_stats(cfg)).to(device).train()
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)
    cached = {k: v.to(device) if torch.is_tensor(v) else v for k, v in synthetic_batch(cfg, 8, seed=0).items()}

    def fb(batch):
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)

    counter = iter(range(10**9))

    def full():
        b = synthetic_batch(cfg, 8, seed=next(counter))
        fb({k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()})
    return time_it(full, repeats, 2), time_it(lambda: fb(cached), repeats, 2)


def run(device: str = "cpu", quick: bool = False) -> dict:
    n = 10 if quick else 50
    out = {}
    fwd = {}
    for m in TINY_METHODS:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, _ = forward_times(m, device, n)
        fwd[m] = times
        out[f"{m}.forward_ms"] = figure(times, "ms", 1e3)
        out[f"{m}.peak_rss_mb"] = scalar(peak_rss_mb(), "MB", note="process peak after this method")
        if device == "cuda":
            out[f"{m}.cuda_peak_allocated_mb"] = scalar(torch.cuda.max_memory_allocated() / 2**20, "MB")
    out["spatial_forcing_over_baseline_forward"] = scalar(
        interleaved_ratio("spatial_forcing", "baseline", device, 4 * n), "ratio",
        note="median of paired, interleaved runs on the same input; the teacher is not run at inference")
    step, fb = train_overhead("falcon", device, 5 if quick else 20)
    out["falcon.train_step_ms"] = figure(step, "ms", 1e3)
    out["falcon.forward_backward_cached_ms"] = figure(fb, "ms", 1e3)
    out["falcon.data_overhead_ratio"] = scalar(float(torch.tensor(step).median() / torch.tensor(fb).median()),
                                               "ratio", note="step time / pure forward+backward")
    if device == "cuda" and not quick:
        out.update(paper_scale_cuda())
    return out


def paper_scale_cuda() -> dict:
    """Paper-scale per-chunk latency on CUDA in bf16 autocast: the VGGT-1B ESM alone on one 518x518 frame,
    and FALCON and SpatialVLA with a PaliGemma-3B-class backbone (architecture from its config, random weights:
    latency does not depend on the values) on one 224x224 RGB-D frame."""
    import tempfile

    from transformers import PaliGemmaConfig

    from vla_ros.policies.spatial_model.esm import Aggregator, ESMConfig

    out = {}
    times, peak = _cuda_timed(Aggregator(ESMConfig.vggt_1b()).cuda().eval(),
                              (torch.rand(1, 1, 3, 518, 518, device="cuda"),), 20)
    out["paper.esm_vggt1b_forward_bf16_ms"] = figure(times, "ms", 1e3)
    out["paper.esm_vggt1b_cuda_peak_allocated_mb"] = scalar(peak, "MB")
    folder = tempfile.mkdtemp(prefix="vla_paligemma_cfg_")
    PaliGemmaConfig().save_pretrained(folder)
    esm_1b = {"embed_dim": 1024, "heads": 16, "depth": 24, "patch_size": 14, "img_size": 518, "dino_depth": 24,
              "init_values": 1.0}
    for method, args in (("falcon", {"architecture": "compact", "esm": esm_1b}),
                         ("spatialvla_legacy", {})):
        cfg = tiny_config(method, image_size=224, vlm={"kind": "hf", "path": folder, "width": 2048, "heads": 8,
                                                      "depth": 18, "patch_size": 14}, method_args=args)
        policy = make_policy(cfg, synthetic_norm_stats(cfg)).cuda().eval()
        batch = {k: v.cuda() if torch.is_tensor(v) else v for k, v in synthetic_batch(cfg, 1, seed=0).items()}
        times, peak = _cuda_timed(policy.predict_actions, (batch, ("rgb", "depth", "pose")), 10)
        out[f"paper.{method}_chunk_latency_bf16_ms"] = figure(times, "ms", 1e3)
        out[f"paper.{method}_cuda_peak_allocated_mb"] = scalar(peak, "MB")
    return out


def _cuda_timed(fn, args: tuple, repeats: int) -> tuple[list[float], float]:
    """Times of fn(*args) under bf16 autocast, and the peak CUDA memory (MB); frees the cache afterwards."""
    torch.cuda.reset_peak_memory_stats()

    def call():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            fn(*args)
        torch.cuda.synchronize()
    times = time_it(call, repeats, 2)
    peak = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.empty_cache()
    return times, peak
