"""Record -> bag-info -> eval-bag -> export-dataset -> train loads it (both storages); pi0 + Spatial Forcing
fine-tuned on the exported bags and run on their observations."""
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from vla_ros.core.transforms import quat_angle_rad
from vla_ros.data.bag_writer import COMMAND_LAG_S, T0_S, sweep_target, write_robot_bag
from vla_ros.data.dataset import load_episode, read_meta
from vla_ros.ros.synthetic_robot import tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config


def cli(*args):
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", *args], capture_output=True, text=True, check=False,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_round_trip(tmp_path):
    cfg = load_runtime_config("franka")
    bags = [str(write_robot_bag(tmp_path / f"ep{i}", cfg, seconds=1.5, storage=s)) for i, s in
            enumerate(["mcap", "sqlite3", "mcap"])]
    info = json.loads(cli("bag-info", bags[0], "--json", "--config", "franka"))
    assert "/target_pose" in info["config"]["present"]
    ckpt = tiny_checkpoint(tmp_path, cfg, "baseline")
    cli("eval-bag", bags[1], "--config", "franka", "--checkpoint", ckpt, "--out", str(tmp_path / "eval"),
        "--no-progress")
    report = json.loads((tmp_path / "eval" / "report.json").read_text())["runs"]["rgbd_pose"]
    assert report["frames"] == report["recorded_actions"] == 15
    assert report["arms"]["arm"]["scored_steps"] > 0 and report["skipped_actions"] == {}
    assert report["actions_source"] == "command" and set(report["arms"]["arm"]["per_dim"]) == {
        "x", "y", "z", "rx", "ry", "rz", "gripper"}
    cli("export-dataset", *bags, "--config", "franka", "--out", str(tmp_path / "ds"))
    meta = read_meta(tmp_path / "ds")
    assert len(meta["episodes"]) == 3 and meta["dt_s"] == pytest.approx(0.1) and meta["arm_names"] == ["arm"]
    ep = load_episode(tmp_path / "ds", 0)
    assert len(ep["stamp_s"]) == 15 and ep["proprio"].shape == (15, 7)
    assert ep["rgb__front"].shape[1:] == (48, 64, 3) and ep["depth_m__front"].shape[1:] == (48, 64)
    np.testing.assert_allclose(ep["T_base_camera__front"][0][:3, 3], [0.9, 0.0, 0.6], atol=1e-6)
    # the action of a frame is the target commanded right after it; the measured pose tracks the target
    want = [sweep_target(cfg, t + COMMAND_LAG_S - T0_S, 1.5) for t in ep["stamp_s"]]
    np.testing.assert_allclose(ep["action_position_m"][:, 0], [w.position_m[0] for w in want], atol=1e-6, rtol=0)
    assert quat_angle_rad(ep["action_quat_xyzw"][:, 0], [w.quat_xyzw[0] for w in want]).max() < 1e-6
    np.testing.assert_allclose(ep["ee_pose"], np.concatenate([ep["action_position_m"], ep["action_quat_xyzw"]], -1),
                               atol=1e-9)
    # gripper: the measured opening half a second later, open then closed
    grip = ep["action_gripper"][:, 0]
    closed = int(np.argmax(grip == 0.0))
    assert set(np.unique(grip)) == {0.0, 1.0} and np.all(grip[:closed] == 1.0) and np.all(grip[closed:] == 0.0)
    assert abs(ep["stamp_s"][closed] + 0.5 - (T0_S + 0.75)) <= 0.1 + 1e-6  # the width reads 0 from ~0.75 s
    train_cfg = {"policy": {"method": "falcon", "proprio_dim": 7, "rotation_ref_quat_xyzw": [1.0, 0.0, 0.0, 0.0],
                            "method_args": {"architecture": "compact",
                                            "esm": {"embed_dim": 32, "heads": 2, "depth": 1, "dino_depth": 1}}},
                 "dataset": str(tmp_path / "ds"), "out": str(tmp_path / "run"), "steps": 4, "batch_size": 4,
                 "eval_every": 2, "ckpt_every": 2}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(train_cfg))
    result = json.loads(cli("train", "--config", str(tmp_path / "train.yaml"), "--no-progress").splitlines()[-1])
    assert result["step"] == 4 and np.isfinite(result["val_loss"])
    from vla_ros.policies.checkpoint_io import load_policy

    policy = load_policy(tmp_path / "run" / "checkpoint")
    assert policy.norm_stats.dim("proprio") == 7
    # the user story for pi0: fine-tune with Spatial Forcing on the exported bags, then run the result on
    # the bag's observations (the same observation path as on the robot)
    from vla_ros.policies.factory import tiny_config

    args = {**tiny_config("pi0").method_args}
    args["spatial_forcing"] = {**args["spatial_forcing"], "enabled": True}
    pi0_cfg = {"policy": {"method": "pi0", "proprio_dim": 7, "horizon": 4, "action_reference": "absolute",
                          "method_args": args},
               "dataset": str(tmp_path / "ds"), "out": str(tmp_path / "pi0"), "steps": 3, "batch_size": 4,
               "eval_every": 3, "ckpt_every": 3}
    (tmp_path / "pi0.yaml").write_text(yaml.safe_dump(pi0_cfg))
    result = json.loads(cli("train", "--config", str(tmp_path / "pi0.yaml"), "--no-progress").splitlines()[-1])
    assert result["step"] == 3 and "align_loss" in result and np.isfinite(result["val_loss"])
    cli("eval-bag", bags[1], "--config", "franka", "--checkpoint", str(tmp_path / "pi0" / "checkpoint"), "--out",
        str(tmp_path / "eval_pi0"), "--no-progress")
    report = json.loads((tmp_path / "eval_pi0" / "report.json").read_text())["runs"]
    run = next(iter(report.values()))
    assert run["frames"] == 15 and run["arms"]["arm"]["scored_steps"] > 0
