"""The on-disk training dataset (see docs/dataset_format.md): one compressed .npz per episode plus meta.json
and norm_stats.json. numpy only."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vla_ros.core.actions import poses_to_actions
from vla_ros.core.constants import TOOL_DOWN_QUAT_XYZW
from vla_ros.core.normalize import NormStats, action_proprio_stats

FORMAT, VERSION = "vla_ros.dataset", 1
REQUIRED = ("stamp_s", "proprio", "action_position_m", "action_quat_xyzw", "action_gripper")


class DatasetError(ValueError):
    pass


def action_vectors(ep: dict, ref_quat) -> np.ndarray:
    """(N, A, 7) [xyz, rotation vector relative to ref_quat, gripper] from an episode's target poses."""
    return poses_to_actions(ep["action_position_m"], ep["action_quat_xyzw"], ep["action_gripper"], ref_quat)


def compute_norm_stats(episodes: list[dict], ref_quat=TOOL_DOWN_QUAT_XYZW) -> NormStats:
    act = np.concatenate([action_vectors(e, ref_quat).reshape(len(e["stamp_s"]), -1) for e in episodes])
    return action_proprio_stats(act, np.concatenate([e["proprio"] for e in episodes]))


class DatasetWriter:
    """Args: out_dir; camera, arm and joint names; dt_s (frame period); image_hw (height, width) of every
    camera's images; source (free-form provenance stored in meta.json)."""

    def __init__(self, out_dir: str | Path, cameras: list[str], arm_names: list[str], joint_names: list[str],
                 dt_s: float, image_hw: tuple[int, int], source: dict | None = None):
        self.root = Path(out_dir)
        (self.root / "episodes").mkdir(parents=True, exist_ok=True)
        self.meta = {"format": FORMAT, "version": VERSION, "cameras": list(cameras), "arm_names": list(arm_names),
                     "joint_names": list(joint_names), "dt_s": dt_s, "image_hw": [int(v) for v in image_hw],
                     "action_reference": "absolute", "norm_stats_rotation_ref_quat_xyzw": list(TOOL_DOWN_QUAT_XYZW),
                     "episodes": [], "source": source or {}}
        self._episodes: list[dict] = []

    def add_episode(self, arrays: dict, instruction: str, task: str = "", success: bool = True) -> None:
        n = len(arrays["stamp_s"])
        if n == 0:
            raise DatasetError("episode has no frames")
        missing = [k for k in REQUIRED if k not in arrays]
        if missing:
            raise DatasetError(f"episode lacks the array(s) {missing}")
        for k, v in arrays.items():
            if len(v) != n:
                raise DatasetError(f"episode array {k!r} has {len(v)} frames, stamp_s has {n}")
            if k.startswith("rgb__") and tuple(v.shape[1:3]) != tuple(self.meta["image_hw"]):
                raise DatasetError(f"episode array {k!r} has images of {tuple(v.shape[1:3])}, the dataset's are "
                                   f"{tuple(self.meta['image_hw'])}")
        i = len(self.meta["episodes"])
        name = f"episodes/episode_{i:06d}.npz"
        np.savez_compressed(self.root / name, **arrays)
        self.meta["episodes"].append({"file": name, "length": n, "instruction": instruction, "task": task,
                                      "success": bool(success)})
        self._episodes.append({k: arrays[k] for k in REQUIRED})

    def close(self) -> Path:
        if not self._episodes:
            raise DatasetError(f"{self.root}: no episode was written")
        compute_norm_stats(self._episodes).save(self.root / "norm_stats.json")
        (self.root / "meta.json").write_text(json.dumps(self.meta, indent=1))
        return self.root


def read_meta(root: str | Path) -> dict:
    p = Path(root) / "meta.json"
    try:
        meta = json.loads(p.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{p}: not found (not a vla_ros dataset folder)") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise DatasetError(f"{p}: format {meta.get('format')!r} v{meta.get('version')} is not {FORMAT} v{VERSION}")
    return meta


def load_episode(root: str | Path, i: int) -> dict:
    meta = read_meta(root)
    with np.load(Path(root) / meta["episodes"][i]["file"]) as z:
        return {k: z[k] for k in z.files}
