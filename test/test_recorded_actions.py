"""Recorded actions per robot: the commands the bag writer sends with each robot's real message types (Franka
PoseStamped, WidowX JointGroupCommand + JointSingleCommand, AgileX Piper PosCmd per arm) decode to the targets it
wrote; eval-bag and export-dataset end to end (CLI, mcap and sqlite3) on WidowX and dual-arm AgileX bags; per-arm
metrics with a policy whose output is known; clear errors when the config's commands are not in the bag."""
import json
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_ros.core.transforms import quat_angle_rad
from vla_ros.core.types import ActionChunk
from vla_ros.data.bag_writer import COMMAND_LAG_S, FIRST_FRAME_S, T0_S, sweep_target, write_robot_bag
from vla_ros.data.bags import Bag
from vla_ros.data.recorded_actions import actions_in_bag
from vla_ros.runtime_config import load_runtime_config

SECONDS, HZ = 2.0, 10.0
FRAMES = int(SECONDS * HZ)
# the writer's commands reach its targets exactly (Franka, Piper) or within the wx250s IK tolerance (WidowX)
POS_TOL_M = {"franka": 1e-6, "agilex": 1e-6, "widowx": 2e-4}
ROT_TOL_RAD = {"franka": 1e-6, "agilex": 1e-6, "widowx": 2e-3}
COMMAND_TYPES = {"franka": {"/target_pose": "geometry_msgs/msg/PoseStamped"},
                 "widowx": {"/wx250s/commands/joint_group": "interbotix_xs_msgs/msg/JointGroupCommand",
                            "/wx250s/commands/joint_single": "interbotix_xs_msgs/msg/JointSingleCommand"},
                 "agilex": {"/pos_cmd_left": "piper_msgs/msg/PosCmd", "/pos_cmd_right": "piper_msgs/msg/PosCmd"}}


def command_times_s() -> np.ndarray:
    return T0_S + FIRST_FRAME_S + np.arange(FRAMES) / HZ + COMMAND_LAG_S


def written(cfg, times_s) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, A, 3) positions, (M, A, 4) quaternions, (M, A) grippers the writer commanded at `times_s`."""
    targets = [sweep_target(cfg, t - T0_S, SECONDS) for t in times_s]
    return (np.stack([t.position_m for t in targets]), np.stack([t.quat_xyzw for t in targets]),
            np.stack([t.gripper for t in targets]))


def decode(bag, cfg):
    with Bag(bag) as b:  # no msg_dirs: the robot types' definitions are stored in the bag
        assert not b.skipped, b.skipped
        types = {t: i.msgtype for t, i in b.topics().items()}
        actions = actions_in_bag(b, cfg)
        for topic, t_ns, msg in b.messages(actions.topics()):
            actions.feed(topic, t_ns, msg)
    return actions, types


def assert_targets_match(robot, pos, quat, want_pos, want_quat):
    np.testing.assert_allclose(pos, want_pos, atol=POS_TOL_M[robot], rtol=0)
    assert quat_angle_rad(quat, want_quat).max() < ROT_TOL_RAD[robot]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("robot", ["franka", "widowx", "agilex"])
def test_commands_decode_to_the_written_targets(tmp_path, robot, storage):
    cfg = load_runtime_config(robot)
    bag = write_robot_bag(tmp_path / "rec", cfg, seconds=SECONDS, camera_hz=HZ, storage=storage)
    actions, types = decode(bag, cfg)
    assert {t: types[t] for t in COMMAND_TYPES[robot]} == COMMAND_TYPES[robot]
    assert actions.source == "command" and actions.count() == FRAMES and not actions.skipped
    want_pos, want_quat, want_grip = written(cfg, command_times_s())
    for a in range(len(cfg.executor.arm_names)):
        t, poses = actions.series(a)
        np.testing.assert_allclose(t, command_times_s(), atol=1e-6, rtol=0)
        assert_targets_match(robot, poses[:, :3], poses[:, 3:], want_pos[:, a], want_quat[:, a])
    grip = actions.gripper_at(actions.series(0)[0], actions.gripper_lead_s)  # at the decoded command stamps
    if robot == "franka":  # measured finger width, read STATE_GRIPPER_LEAD_S ahead: closed from 0.5 s before
        np.testing.assert_array_equal(grip[:, 0], written(cfg, command_times_s() + 0.5)[2][:, 0])
    else:  # carried by the commands: exactly as written (Piper's right arm at 0.75 open)
        np.testing.assert_allclose(grip, want_grip, atol=1e-9, rtol=0)
        assert set(np.unique(grip[:, 0])) == {0.0, 1.0}


def test_piper_commands_in_driver_units(tmp_path):
    """A driver in mm and degrees: the PosCmd fields are in those units; decoding gives metres and radians."""
    base = load_runtime_config("agilex")
    cfg = replace(base, adapter=replace(base.adapter, settings=replace(base.adapter.settings, position_scale=1000.0,
                                                                       angle_unit="deg")))
    bag = write_robot_bag(tmp_path / "rec", cfg, seconds=SECONDS, camera_hz=HZ)
    with Bag(bag) as b:
        left = [m for _, _, m in b.messages(["/pos_cmd_left"])]
    want_pos, want_quat, want_grip = written(cfg, command_times_s())
    np.testing.assert_allclose([[m.x, m.y, m.z] for m in left], 1000.0 * want_pos[:, 0], atol=1e-9)
    rpy_deg = np.array([[m.roll, m.pitch, m.yaw] for m in left])
    q = Rotation.from_euler("xyz", np.radians(rpy_deg)).as_quat()
    assert quat_angle_rad(q, want_quat[:, 0]).max() < 1e-6
    np.testing.assert_allclose([m.gripper for m in left], 0.08 * want_grip[:, 0], atol=1e-12)
    actions, _ = decode(bag, cfg)
    for a in range(2):
        _, poses = actions.series(a)
        assert_targets_match("agilex", poses[:, :3], poses[:, 3:], want_pos[:, a], want_quat[:, a])


class SweepOracle:
    """A policy whose output is known: the writer's targets at each step time, arm a offset by +0.01 (a + 1) m in
    x and rotated by 0.05 (a + 1) rad about z; arm 0's gripper as recorded, a second arm's inverted."""

    def __init__(self, cfg, horizon: int = 4, dt_s: float = 0.1):
        self.cfg, self.lead_s = cfg, 0.5 if cfg.robot == "franka" else 0.0  # Franka: gripper state read ahead
        self.config = SimpleNamespace(arm_names=list(cfg.executor.arm_names), method="oracle", horizon=horizon,
                                      dt_s=dt_s, rotation_ref_quat_xyzw=[0.0, 0.0, 0.0, 1.0])

    def reset(self):
        pass

    def infer(self, obs, modalities):
        times = obs.stamp_s + self.config.dt_s * np.arange(1, self.config.horizon + 1)
        pos, quat, _ = written(self.cfg, times)
        grip = written(self.cfg, times + self.lead_s)[2]
        for a in range(pos.shape[1]):
            pos[:, a, 0] += 0.01 * (a + 1)
            quat[:, a] = (Rotation.from_euler("z", 0.05 * (a + 1)) * Rotation.from_quat(quat[:, a])).as_quat()
        grip[:, 1:] = 1.0 - grip[:, 1:]
        return ActionChunk(obs.stamp_s, self.config.dt_s, self.cfg.observation.base_frame, self.config.arm_names,
                           pos, quat, grip, modalities=tuple(modalities))


@pytest.mark.parametrize("robot", ["franka", "widowx", "agilex"])
def test_per_arm_metrics_of_a_known_policy(tmp_path, robot):
    from vla_ros.eval.offline import evaluate

    cfg = load_runtime_config(robot)
    bag = write_robot_bag(tmp_path / "rec", cfg, seconds=SECONDS, camera_hz=HZ)
    report, _ = evaluate(bag, cfg, "oracle", ["rgbd"], progress=False, policy=SweepOracle(cfg))
    run = report["runs"]["rgbd"]
    assert list(run["arms"]) == cfg.executor.arm_names and run["chunks_scored"] == FRAMES
    interp_m = 1e-4 + POS_TOL_M[robot]  # recorded targets are interpolated linearly between 10 Hz commands
    for a, arm in enumerate(cfg.executor.arm_names):
        m = run["arms"][arm]
        assert m["per_dim"]["x"]["mae"] == pytest.approx(0.01 * (a + 1), abs=interp_m)
        assert m["per_dim"]["y"]["mae"] < interp_m and m["per_dim"]["z"]["mae"] < interp_m
        assert m["rotation_angle_rad"]["mae"] == pytest.approx(0.05 * (a + 1), abs=1e-3 + ROT_TOL_RAD[robot])
        assert max(e for e in m["position_error_m_per_step"] if e is not None) < 0.01 * (a + 1) + interp_m
        # the recorded opening changes once; only steps right around the change can disagree
        assert m["gripper_accuracy"] > 0.9 if a == 0 else m["gripper_accuracy"] < 0.1
    if robot == "agilex":  # right: 0.25 predicted against 0.75 recorded at every step
        assert run["arms"]["right"]["per_dim"]["gripper"]["mae"] == pytest.approx(0.5, abs=1e-9)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vla_ros.cli", *args], capture_output=True, text=True,
                          check=False, timeout=300)


def expected_scored_steps(horizon: int, dt_s: float) -> int:
    stamps = T0_S + FIRST_FRAME_S + np.arange(FRAMES) / HZ
    steps = stamps[:, None] + dt_s * np.arange(1, horizon + 1)
    lo, hi = command_times_s()[[0, -1]]
    return int(((steps >= lo - 1e-6) & (steps <= hi + 1e-6)).sum())


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("robot", ["widowx", "agilex"])
def test_eval_bag_and_export_dataset_end_to_end(tmp_path, robot, storage):
    from vla_ros.data.dataset import load_episode, read_meta
    from vla_ros.ros.synthetic_robot import tiny_checkpoint

    cfg = load_runtime_config(robot)
    arms = cfg.executor.arm_names
    bag = str(write_robot_bag(tmp_path / f"rec_{storage}", cfg, seconds=SECONDS, camera_hz=HZ, storage=storage))
    ckpt = tiny_checkpoint(tmp_path, cfg, "baseline")  # this robot's arms, proprio = its joints
    proc = cli("eval-bag", bag, "--config", robot, "--checkpoint", ckpt, "--out", str(tmp_path / "eval"),
               "--modalities", "rgbd", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    run = report["runs"]["rgbd"]
    assert run["frames"] == run["chunks_scored"] == run["recorded_actions"] == FRAMES
    assert run["actions_source"] == "command" and set(run["action_topics"]) == set(COMMAND_TYPES[robot])
    assert run["modalities_used"][0] in ("rgb", "rgb+depth") and run["latency_ms"]["median"] > 0
    T, dt = report["horizon"], report["dt_s"]
    overlapping = FRAMES - 1 if (T - 1) * dt >= 1 / HZ - 1e-9 else 0
    assert run["chunk_self_consistency"]["pairs"] == overlapping
    assert list(run["arms"]) == arms
    for arm in arms:
        m = run["arms"][arm]
        assert m["scored_steps"] == expected_scored_steps(T, dt) and len(m["position_error_m_per_step"]) == T
        assert set(m["per_dim"]) == {"x", "y", "z", "rx", "ry", "rz", "gripper"}
        assert all(d["rmse"] >= d["mae"] >= 0 for d in m["per_dim"].values())
        assert m["per_dim"]["x"]["unit"] == "m" and m["per_dim"]["rz"]["unit"] == "rad"
        assert 0.0 <= m["gripper_accuracy"] <= 1.0
        assert (tmp_path / "eval" / f"pred_vs_recorded_{arm}.png").stat().st_size > 1000

    proc = cli("export-dataset", bag, "--config", robot, "--out", str(tmp_path / "ds"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = read_meta(tmp_path / "ds")
    assert meta["arm_names"] == arms and meta["joint_names"] == cfg.observation.joint_names
    ep = load_episode(tmp_path / "ds", 0)
    assert len(ep["stamp_s"]) == FRAMES and ep["proprio"].shape == (FRAMES, len(cfg.observation.joint_names))
    assert ep["action_position_m"].shape == (FRAMES, len(arms), 3) and "ee_pose" not in ep
    want_pos, want_quat, want_grip = written(cfg, ep["stamp_s"] + COMMAND_LAG_S)  # the command after each frame
    assert_targets_match(robot, ep["action_position_m"], ep["action_quat_xyzw"], want_pos, want_quat)
    np.testing.assert_allclose(ep["action_gripper"], want_grip, atol=1e-9, rtol=0)


def test_bag_without_the_configs_commands_is_refused(tmp_path):
    cfg = load_runtime_config("agilex")
    other = replace(cfg, adapter=replace(cfg.adapter, command_topics=["/left/pos_cmd", "/right/pos_cmd"]))
    from vla_ros.ros.synthetic_robot import tiny_checkpoint

    bag = str(write_robot_bag(tmp_path / "rec", other, seconds=0.5))
    ckpt = tiny_checkpoint(tmp_path, cfg, "baseline")
    for args in (("eval-bag", bag, "--config", "agilex", "--checkpoint", ckpt, "--out", str(tmp_path / "o"),
                  "--no-progress"),
                 ("export-dataset", bag, "--config", "agilex", "--out", str(tmp_path / "ds"))):
        proc = cli(*args)
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert "/pos_cmd_left" in proc.stderr and "/pos_cmd_right" in proc.stderr and bag in proc.stderr
        assert "Traceback" not in proc.stderr


def test_commands_of_another_widowx_group_are_named(tmp_path):
    from vla_ros.data.dataset import DatasetError
    from vla_ros.data.export import episode_from_bag
    from vla_ros.eval.offline import EvalError, evaluate

    cfg = load_runtime_config("widowx")
    other = replace(cfg, adapter=replace(cfg.adapter, settings=replace(cfg.adapter.settings, group="all")))
    bag = write_robot_bag(tmp_path / "rec", other, seconds=0.5)
    with pytest.raises(EvalError, match=r"joint_group: group 'all' .* adapter.settings.group 'arm'"):
        evaluate(bag, cfg, "oracle", ["rgbd"], progress=False, policy=SweepOracle(cfg))
    with pytest.raises(DatasetError, match=r"no recorded target for arm\(s\) \['arm'\].*group 'all'"):
        episode_from_bag(bag, cfg)


def test_unusable_commands_are_skipped_and_counted():
    from vla_ros.data.recorded_actions import RecordedActions, RecordedActionsError

    cfg = load_runtime_config("agilex")
    actions = RecordedActions(cfg, {"/pos_cmd_left", "/pos_cmd_right"})
    good = {"x": 0.3, "y": 0.25, "z": 0.2, "roll": np.pi, "pitch": 0.0, "yaw": 0.0, "gripper": 0.04, "mode1": 0,
            "mode2": 0}
    actions.feed("/pos_cmd_left", 1_000_000_000, SimpleNamespace(**good))
    actions.feed("/pos_cmd_right", 1_100_000_000, SimpleNamespace(**{**good, "x": float("nan")}))
    assert actions.skipped == {"/pos_cmd_right: non-finite target or not a unit quaternion": 1}
    np.testing.assert_allclose(actions.gripper_at([1.0])[0], [0.5, 1.0])  # 0.04 of 0.08 m; right: open (none yet)
    with pytest.raises(RecordedActionsError, match=r"no recorded target for arm\(s\) \['right'\].*non-finite"):
        actions.check()
