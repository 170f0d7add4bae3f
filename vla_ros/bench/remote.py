"""A policy on another machine, on loopback: the round-trip overhead of `vla-ros serve` + the openpi backend over
the same tiny model run locally (two 224x224 images + state; goal <= 5 ms median), and throughput with 1, 2 and
4 clients at once (the server batches requests that arrive together)."""
from __future__ import annotations

import threading
import time

import numpy as np
import torch

from vla_ros.bench.stats import figure
from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.serving.remote import OpenpiRemotePolicy
from vla_ros.serving.server import PolicyServer
from vla_ros.training.synthetic import synthetic_norm_stats

MODS = ("rgb",)


def _observation(seed: int, stamp_s: float) -> Observation:
    rng = np.random.default_rng(seed)
    K = np.array([[200.0, 0, 111.5], [0, 200.0, 111.5], [0, 0, 1]])
    cams = [CameraObservation(n, rng.integers(0, 255, (224, 224, 3), dtype=np.uint8), K, stamp_s)
            for n in ("front", "wrist")]
    return Observation(stamp_s, cams, rng.uniform(-1, 1, 8).astype(np.float32), "pick up the red block")


def _throughput(url: str, clients: int, rounds: int, per_round: int) -> list[float]:
    conns = [OpenpiRemotePolicy(url, timeout_s=30.0) for _ in range(clients)]
    obs = [_observation(i, 1.0 + i) for i in range(clients)]
    rates = []
    for _ in range(rounds):
        threads = [threading.Thread(target=lambda c=c, o=o: [c.infer(o, MODS) for _ in range(per_round)])
                   for c, o in zip(conns, obs)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rates.append(clients * per_round / (time.perf_counter() - t0))
    for c in conns:
        c.close()
    return rates


def run(device: str = "cpu", quick: bool = False) -> dict:
    torch.manual_seed(0)
    cfg = tiny_config("baseline", camera_names=["front", "wrist"], proprio_dim=8)
    policy = make_policy(cfg, synthetic_norm_stats(cfg)).to(device).eval()
    server = PolicyServer(policy, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.start_in_thread()}"
    try:
        client = OpenpiRemotePolicy(url, timeout_s=30.0)
        pairs = 20 if quick else 100
        local, remote = [], []
        for i in range(pairs + 3):  # alternate, so drift cancels; the first 3 warm up
            obs = _observation(i, 1.0 + i)
            t0 = time.perf_counter()
            policy.infer(obs, MODS)
            t1 = time.perf_counter()
            client.infer(obs, MODS)
            t2 = time.perf_counter()
            if i >= 3:
                local.append(t1 - t0)
                remote.append(t2 - t1)
        client.close()
        out = {"round_trip_overhead_ms": figure(np.subtract(remote, local), "ms", 1e3, goal_ms=5.0,
                                                  images="2 x 224x224 RGB + 8 state"),
               "local_infer_ms": figure(local, "ms", 1e3), "remote_infer_ms": figure(remote, "ms", 1e3)}
        for n in (1, 2, 4):
            out[f"throughput_{n}_clients"] = figure(_throughput(url, n, 3 if quick else 5, 5 if quick else 20),
                                                    "requests/s", batching=server.batching)
        out["mean_batch"] = {"value": server.stats()["mean_batch"], "unit": "requests per forward pass"}
        return out
    finally:
        server.stop()
