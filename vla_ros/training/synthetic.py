"""Synthetic training samples with learnable structure, for `vla-ros train --tiny` and tests.

A coloured square sits at a random position on a random-depth plane; the target end-effector position is
the square's 3-D point (so depth and intrinsics matter), the gripper closes when the word "close" is in
the instruction. Batches follow the training contract (see vla_ros/policies/base.py).
"""
from __future__ import annotations

import numpy as np
import torch

from vla_ros.core.actions import poses_to_actions
from vla_ros.policies.config import PolicyConfig


def synthetic_batch(cfg: PolicyConfig, batch_size: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    S, H = len(cfg.camera_names), cfg.image_size
    A, T = len(cfg.arm_names), cfg.horizon
    f = 0.8 * H
    K = np.array([[f, 0, (H - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]], np.float32)
    rgb = np.zeros((batch_size, S, 3, H, H), np.float32)
    depth = np.zeros((batch_size, S, H, H), np.float32)
    action = np.zeros((batch_size, T, A, 7), np.float32)
    words = []
    for b in range(batch_size):
        z = rng.uniform(0.4, 1.2)
        u, v = rng.integers(4, H - 12, 2)
        colour = rng.uniform(0.3, 1.0, 3)
        for s in range(S):
            rgb[b, s, :, :, :] = 0.1
            rgb[b, s, :, v:v + 8, u:u + 8] = colour[:, None, None]
            depth[b, s] = z
        p = np.linalg.inv(K) @ np.array([u + 3.5, v + 3.5, 1.0]) * z
        close = rng.random() < 0.5
        words.append(("close on" if close else "reach") + " the block")
        q = np.tile(np.asarray(cfg.rotation_ref_quat_xyzw, float), (T, A, 1))
        pos = np.tile(p, (T, A, 1)) + np.linspace(0, 0.02, T)[:, None, None]
        action[b] = poses_to_actions(pos, q, np.full((T, A), 0.0 if close else 1.0), cfg.rotation_ref_quat_xyzw)
    T_cam = np.tile(np.eye(4, dtype=np.float32), (batch_size, S, 1, 1))
    return {
        "rgb": torch.from_numpy(rgb), "depth_m": torch.from_numpy(depth),
        "depth_valid": torch.from_numpy(depth > 0), "K": torch.from_numpy(np.tile(K, (batch_size, S, 1, 1))),
        "T_base_camera": torch.from_numpy(T_cam), "pose_valid": torch.ones(batch_size, dtype=torch.bool),
        "proprio": torch.from_numpy(rng.normal(0, 0.1, (batch_size, cfg.proprio_dim)).astype(np.float32)),
        "instruction": words, "action": torch.from_numpy(action),
        "action_pad": torch.zeros(batch_size, T, dtype=torch.bool),
    }


def synthetic_norm_stats(cfg: PolicyConfig, n: int = 256):
    from vla_ros.core.normalize import NormStats

    b = synthetic_batch(cfg, n, seed=12345)
    act = b["action"].reshape(-1, cfg.action_dim).numpy()
    mask = np.ones(cfg.action_dim, bool)
    mask[6::7] = False  # grippers stay in [0, 1]
    return NormStats.from_arrays({"action": act, "proprio": b["proprio"].numpy()}, {"action": mask})


def fit_batch(policy, batch: dict, steps: int, lr: float = 1e-3) -> list[dict]:
    """Overfit `policy` on one batch for `steps` AdamW steps (its trainable parameters); the per-step metrics.
    The quick check that a model and its loss can learn at all."""
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=lr)
    history = []
    for _ in range(steps):
        loss, metrics = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(metrics)
    return history
