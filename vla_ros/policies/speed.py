"""Inference speed-ups behind the robot YAML's `policy.precision` and `policy.compile`, applied by the policy node
after loading: bf16 autocast around the forward, and `torch.compile` of it ("reduce-overhead" on CUDA, which
captures CUDA graphs where the graph allows; the default mode on CPU). Graph breaks (Python control flow such as
SpatialVLA's token loop) fall back to eager for that part, so every method runs either way; the first call
compiles (tens of seconds), which the node's warm-up takes before the first chunk is published."""
from __future__ import annotations

import torch


def accelerate(policy, precision: str = "fp32", compile: bool = False) -> None:
    """Wrap `policy.predict_actions` (what `infer` times as the forward) in place; precision "fp32" or "bf16"."""
    forward = policy.predict_actions
    if compile:
        forward = torch.compile(forward, mode="reduce-overhead" if policy.device.type == "cuda" else None)
    if precision == "bf16":
        inner = forward

        def forward(batch: dict, modalities: tuple[str, ...]) -> torch.Tensor:
            with torch.autocast(policy.device.type, dtype=torch.bfloat16):
                return inner(batch, modalities).float()
    policy.predict_actions = forward
