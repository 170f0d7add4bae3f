"""Training samples from the on-disk dataset: one frame's observation and the next `horizon` targets."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from vla_ros.core.camera import Intrinsics
from vla_ros.data.dataset import DatasetError, action_vectors, compute_norm_stats, load_episode, read_meta


class EpisodeDataset(torch.utils.data.Dataset):
    """Episodes are split into train/val by episode (seeded); items follow the training batch contract."""

    def __init__(self, root, horizon: int, image_size: int, split: str = "train", val_fraction: float = 0.1,
                 seed: int = 0, cameras: list[str] | None = None, ref_quat=(1.0, 0.0, 0.0, 0.0)):
        self.meta = read_meta(root)
        self.cameras = cameras or self.meta["cameras"]
        missing = [c for c in self.cameras if c not in self.meta["cameras"]]
        if missing:
            raise DatasetError(f"{root}: dataset has cameras {self.meta['cameras']}, policy needs {missing}")
        n_ep = len(self.meta["episodes"])
        order = np.random.default_rng(seed).permutation(n_ep)
        n_val = min(max(1, int(round(val_fraction * n_ep))), n_ep - 1) if n_ep > 1 else 0
        chosen = order[:n_val] if split == "val" else order[n_val:]
        if split == "val" and n_val == 0:
            chosen = order[:1]
        self.episodes = [load_episode(root, int(i)) for i in sorted(chosen)]
        self.instructions = [self.meta["episodes"][int(i)]["instruction"] for i in sorted(chosen)]
        self.horizon, self.size, self.ref = horizon, image_size, list(ref_quat)
        self.actions = [action_vectors(e, self.ref).astype(np.float32) for e in self.episodes]
        self.index = [(e, t) for e, ep in enumerate(self.episodes) for t in range(len(ep["stamp_s"]))]
        self.norm_stats = compute_norm_stats(self.episodes, self.ref)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        e, t = self.index[i]
        ep, s = self.episodes[e], self.size
        rgb, depth, valid, K, T = [], [], [], [], []
        for cam in self.cameras:
            img = ep[f"rgb__{cam}"][t]
            h, w = img.shape[:2]
            rgb.append(cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA))
            K.append(Intrinsics(ep[f"K__{cam}"][t].astype(float), np.zeros(0), w, h).resized(s, s).K)
            if f"depth_m__{cam}" in ep:
                d = cv2.resize(ep[f"depth_m__{cam}"][t], (s, s), interpolation=cv2.INTER_NEAREST)
            else:
                d = np.zeros((s, s), np.float32)
            depth.append(d)
            valid.append(d > 0)
            T.append(ep[f"T_base_camera__{cam}"][t])
        T = np.stack(T).astype(np.float32)
        pose_valid = bool(np.isfinite(T).all())
        acts = self.actions[e]
        idx = np.arange(t + 1, t + 1 + self.horizon)
        pad = idx >= len(acts)
        chunk = acts[np.minimum(idx, len(acts) - 1)]
        return {"rgb": torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255.0,
                "depth_m": torch.from_numpy(np.stack(depth)), "depth_valid": torch.from_numpy(np.stack(valid)),
                "K": torch.from_numpy(np.stack(K)).float(),
                "T_base_camera": torch.from_numpy(np.nan_to_num(T, nan=0.0) if not pose_valid else T),
                "pose_valid": torch.tensor(pose_valid),
                "proprio": torch.from_numpy(ep["proprio"][t].astype(np.float32)),
                "instruction": self.instructions[e], "action": torch.from_numpy(chunk),
                "action_pad": torch.from_numpy(pad)}


def collate(items: list[dict]) -> dict:
    out = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = vals if isinstance(vals[0], str) else torch.stack(vals)
    return out
