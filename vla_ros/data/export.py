"""rosbag2 recordings -> the training dataset. Frames are the synchronised observations the live pipeline would
assemble (same converters); the action of a frame is the robot's commanded end-effector target recorded right
after it (the command topic of the robot config). One bag = one episode."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.data.bags import Bag
from vla_ros.data.dataset import DatasetError, DatasetWriter
from vla_ros.eval.bag_observations import BagObservations, iterate

MAX_COMMAND_DELAY_S = 0.5


def episode_from_bag(bag_path: str, cfg) -> tuple[dict, str, dict]:
    """(arrays, instruction, report) for one bag."""
    command_topic = cfg.adapter.command_topics[0]
    feeder = BagObservations(cfg.observation, command_topic)
    with Bag(bag_path) as bag:
        if command_topic not in bag.topics():
            raise DatasetError(f"{bag_path}: no recorded commands on {command_topic} (the robot config's command "
                               "topic); nothing to learn from")
        frames = [obs for _, obs in iterate(bag, feeder)]
    if not frames:
        raise DatasetError(f"{bag_path}: no valid observation (check topics with `vla-ros bag-info --config`)")
    cmd_t = np.array([c[0] for c in feeder.commands])
    cmd_p = np.stack([c[1] for c in feeder.commands])
    keep, act = [], []
    for i, obs in enumerate(frames):
        j = int(np.searchsorted(cmd_t, obs.stamp_s))
        if j < len(cmd_t) and cmd_t[j] - obs.stamp_s <= MAX_COMMAND_DELAY_S:
            keep.append(i)
            act.append(cmd_p[j])
    if not keep:
        raise DatasetError(f"{bag_path}: no frame has a command within {MAX_COMMAND_DELAY_S} s after it")
    frames = [frames[i] for i in keep]
    act = np.stack(act)[:, None]  # (N, 1 arm, 7)
    arrays = {"stamp_s": np.array([o.stamp_s for o in frames]),
              "proprio": np.stack([o.proprio for o in frames]).astype(np.float32),
              "action_position_m": act[..., :3].astype(np.float32),
              "action_quat_xyzw": act[..., 3:].astype(np.float32),
              "action_gripper": _gripper_targets(feeder.gripper, np.array([o.stamp_s for o in frames]))[:, None]}
    for ci, cam in enumerate(cfg.observation.cameras):
        cams = [o.cameras[ci] for o in frames]
        arrays[f"rgb__{cam.name}"] = np.stack([c.rgb for c in cams])
        arrays[f"K__{cam.name}"] = np.stack([c.K for c in cams]).astype(np.float32)
        arrays[f"T_base_camera__{cam.name}"] = np.stack([c.T_base_camera if c.T_base_camera is not None else
                                                         np.full((4, 4), np.nan) for c in cams]).astype(np.float32)
        if all(c.depth_m is not None for c in cams):
            arrays[f"depth_m__{cam.name}"] = np.stack([c.depth_m for c in cams]).astype(np.float32)
    report = {"bag": str(bag_path), "frames": len(frames), "rejected": feeder.rejected}
    return arrays, frames[0].instruction, report


def _gripper_targets(recorded: list[tuple[float, float]], stamps: np.ndarray) -> np.ndarray:
    """Gripper target of each frame: the recorded opening 0.5 s later (where the command leads), else open."""
    if not recorded:
        return np.ones(len(stamps), np.float32)
    gt, gv = np.array([g[0] for g in recorded]), np.array([g[1] for g in recorded])
    return gv[np.clip(np.searchsorted(gt, stamps + MAX_COMMAND_DELAY_S), 0, len(gt) - 1)].astype(np.float32)


def export(bags: list[str], cfg, out: str | Path) -> list[dict]:
    if len(cfg.executor.arm_names) != 1 or cfg.adapter.robot != "franka":
        raise DatasetError("export from recorded commands supports single-arm PoseStamped command topics "
                           f"(franka-style); config {cfg.robot!r} uses {cfg.adapter.robot}")
    writer = DatasetWriter(out, [c.name for c in cfg.observation.cameras], cfg.executor.arm_names,
                           cfg.observation.joint_names, 0.0, {"bags": [str(b) for b in bags], "robot": cfg.robot,
                                                              "gripper": cfg.observation.gripper_topic or
                                                              "no gripper topic configured: recorded as open"})
    reports, dts = [], []
    for b in bags:
        arrays, instruction, rep = episode_from_bag(b, cfg)
        writer.add_episode(arrays, instruction, task=Path(b).name)
        dts.append(float(np.median(np.diff(arrays["stamp_s"]))) if len(arrays["stamp_s"]) > 1 else 0.0)
        reports.append(rep)
    writer.meta["dt_s"] = float(np.median(dts))
    writer.close()
    return reports
