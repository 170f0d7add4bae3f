"""Inference of several requests that arrived together: one forward pass over the stacked batch where the policy
is stateless (its chunk depends on the observation alone), else one after another."""
from __future__ import annotations

import time

import torch

from vla_ros.core.types import ActionChunk, Observation
from vla_ros.policies.base import Policy
from vla_ros.policies.processing import actions_to_chunk, choose_modalities


def can_batch(policy) -> bool:
    """True when a stacked forward pass gives each request what `policy.infer` would: the base class's infer,
    pre- and post-processing, and no per-episode state in any submodule (an LSTM head's history)."""
    if not isinstance(policy, Policy):
        return False
    cls = type(policy)
    same = all(getattr(cls, n) is getattr(Policy, n) for n in ("infer", "postprocess", "observation_to_batch"))
    stateful = any(hasattr(m, "reset") for m in policy.modules() if m is not policy)
    return same and not stateful


def _prepare(policy: Policy, obs: Observation, modalities: tuple[str, ...]):
    batch = policy.observation_to_batch(obs)
    has_depth = all(c.depth_m is not None for c in obs.cameras) and bool(batch["depth_valid"].any())
    has_pose = all(c.T_base_camera is not None for c in obs.cameras)
    used = choose_modalities(policy.config.modalities, modalities or None, has_depth, has_pose)
    return batch, tuple(m for m in used if m in policy.INPUTS)


@torch.no_grad()
def infer_many(policy, requests: list[tuple[Observation, tuple[str, ...]]], batching: bool
               ) -> list[ActionChunk | Exception]:
    """Each request's chunk, or the exception that refused it (one bad request never fails the others)."""
    if not batching or len(requests) == 1:
        out = []
        for obs, mods in requests:
            try:
                out.append(policy.infer(obs, mods or None))
            except Exception as exc:  # reported to that client alone
                out.append(exc)
        return out
    t0 = time.perf_counter()
    out: list = [None] * len(requests)
    groups: dict[tuple[str, ...], list[tuple[int, dict]]] = {}
    for i, (obs, mods) in enumerate(requests):
        try:
            batch, used = _prepare(policy, obs, mods)
        except Exception as exc:
            out[i] = exc
            continue
        groups.setdefault(used, []).append((i, batch))
    policy.eval()
    for used, members in groups.items():
        try:
            stacked = {k: (sum((b[k] for _, b in members), []) if k == "instruction"
                           else torch.cat([b[k] for _, b in members], 0)) for k in members[0][1]}
            actions = policy.predict_actions(stacked, used).float().cpu().numpy()
        except Exception as exc:
            for i, _ in members:
                out[i] = exc
            continue
        for j, (i, _) in enumerate(members):
            try:
                out[i] = actions_to_chunk(actions[j], requests[i][0], policy.config, used, policy.method,
                                          time.perf_counter() - t0)
            except Exception as exc:  # reported to that client alone
                out[i] = exc
    return out
