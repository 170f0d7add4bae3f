"""rosbag2 recordings -> the training dataset (docs/dataset_format.md). One bag = one episode.

Frames are the synchronised observations the live pipeline would assemble (same converters and sync rules).
The action of a frame is, per arm, the first recorded target stamped within MAX_COMMAND_DELAY_S after it (the
robot config's command topics, decoded per robot; or the executor's commanded poses): what the robot was told
to do after seeing that frame. Its gripper is the opening commanded with (or last before) that target where the
commands carry one, else the gripper state STATE_GRIPPER_LEAD_S after the frame. Frames with no such target are
dropped and counted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.data.bag_observations import BagObservations, replay
from vla_ros.data.bags import Bag, BagError
from vla_ros.data.dataset import DatasetError, DatasetWriter
from vla_ros.data.recorded_actions import RecordedActionsError, actions_in_bag

MAX_COMMAND_DELAY_S = 0.5


def episode_from_bag(bag_path: str | Path, cfg, actions_source: str = "auto", msg_dirs=None) -> tuple[dict, str, dict]:
    """(arrays, instruction, report) of one bag; DatasetError/BagError naming the bag or topic when it cannot."""
    feeder = BagObservations(cfg.observation)
    with Bag(bag_path, msg_dirs, strict=False) as bag:
        present = {t for t, i in bag.topics().items() if i.count > 0}
        missing = [t for t in feeder.required_topics() if t not in present]
        if missing:
            raise DatasetError(f"{bag_path}: required topic(s) {missing} missing or empty (robot config "
                               f"{cfg.robot!r})")
        try:
            actions = actions_in_bag(bag, cfg, actions_source)
        except RecordedActionsError as exc:
            raise DatasetError(f"{bag_path}: {exc}; nothing to learn from") from None
        frames = [obs for _, obs in replay(bag, feeder, actions)]
        problems = list(bag.problems)
    if not frames:
        raise DatasetError(f"{bag_path}: no valid observation ({_top(feeder.rejected)}); check the topics with "
                           "`vla-ros bag-info --config`")
    try:
        actions.check()
    except RecordedActionsError as exc:
        raise DatasetError(f"{bag_path}: {exc}") from None
    stamps = np.array([o.stamp_s for o in frames])
    target, target_s, found = actions.next_after(stamps, MAX_COMMAND_DELAY_S)
    if not found.any():
        raise DatasetError(f"{bag_path}: no frame has a recorded action on {actions.topics()} within "
                           f"{MAX_COMMAND_DELAY_S} s after it")
    frames = [f for f, ok in zip(frames, found) if ok]
    stamps, target, target_s = stamps[found], target[found], target_s[found]
    grip = actions.gripper_at(target_s if actions.gripper_from_commands else stamps, actions.gripper_lead_s)
    grip = np.ones(target.shape[:2]) if grip is None else grip
    arrays = {"stamp_s": stamps, "proprio": np.stack([o.proprio for o in frames]),
              "action_position_m": target[..., :3], "action_quat_xyzw": target[..., 3:], "action_gripper": grip}
    if all(o.ee_pose is not None for o in frames):
        arrays["ee_pose"] = np.stack([o.ee_pose for o in frames]).reshape(len(frames), -1, 7)
        if arrays["ee_pose"].shape[1] != target.shape[1]:
            del arrays["ee_pose"]
    for ci, cam in enumerate(cfg.observation.cameras):
        cams = [o.cameras[ci] for o in frames]
        arrays[f"rgb__{cam.name}"] = np.stack([c.rgb for c in cams])
        arrays[f"K__{cam.name}"] = np.stack([c.K for c in cams])
        arrays[f"T_base_camera__{cam.name}"] = np.stack([c.T_base_camera if c.T_base_camera is not None else
                                                         np.full((4, 4), np.nan) for c in cams])
        if all(c.depth_m is not None for c in cams):
            arrays[f"depth_m__{cam.name}"] = np.stack([np.where(c.depth_valid, c.depth_m, 0.0) if
                                                       c.depth_valid is not None else c.depth_m for c in cams])
    report = {"bag": str(bag_path), "frames": len(frames), "dropped_without_action": int((~found).sum()),
              "actions_source": actions.source, "action_topics": actions.topics(),
              "gripper": "recorded" if actions.has_gripper else "not recorded: stored as open",
              "skipped_actions": dict(actions.skipped), "rejected": dict(feeder.rejected), "problems": problems}
    return arrays, frames[0].instruction, report


def _top(counter, n: int = 3) -> str:
    return "; ".join(f"{k} x{v}" for k, v in counter.most_common(n)) or "no primary camera frame"


def export(bags: list[str], cfg, out: str | Path, actions_source: str = "auto", msg_dirs=None) -> list[dict]:
    """Write one episode per bag to `out` (plus norm_stats.json), one bag in memory at a time; returns a report per
    bag. Image sizes must agree across bags."""
    writer, hw, reports, dts = None, None, [], []
    cams = [c.name for c in cfg.observation.cameras]
    for b in bags:
        try:
            arrays, instruction, rep = episode_from_bag(b, cfg, actions_source, msg_dirs)
        except BagError as exc:
            raise DatasetError(str(exc)) from None
        if writer is None:
            hw = arrays[f"rgb__{cams[0]}"].shape[1:3]
            source = {"bags": [str(x) for x in bags], "robot": cfg.robot, "actions": rep["actions_source"],
                      "max_command_delay_s": MAX_COMMAND_DELAY_S}
            writer = DatasetWriter(out, cams, cfg.executor.arm_names, cfg.observation.joint_names, 0.0, tuple(hw),
                                   source)
        for cam in cams:
            if arrays[f"rgb__{cam}"].shape[1:3] != hw:
                raise DatasetError(f"{b}: camera {cam!r} images are {arrays[f'rgb__{cam}'].shape[1:3]}, the first "
                                   f"bag's are {tuple(hw)}; export bags of one camera set-up together")
        writer.add_episode(arrays, instruction, task=Path(b).name)
        if len(arrays["stamp_s"]) > 1:
            dts.append(float(np.median(np.diff(arrays["stamp_s"]))))
        reports.append(rep)
    writer.meta["dt_s"] = float(np.median(dts)) if dts else 0.0
    writer.close()
    return reports
