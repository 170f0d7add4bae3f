"""`vla-ros eval-bag` on recorded Franka bags (MCAP and sqlite3): observations through the live converters, per-arm
metrics against the recorded commands (checked against the targets the bag writer commanded), report.json + PNG
plots + index.html, A/B over modalities, clear errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from vla_ros.core.actions import poses_to_actions
from vla_ros.core.chunking import step_times
from vla_ros.data.bag_writer import COMMAND_LAG_S, FIRST_FRAME_S, T0_S, sweep_target, write_robot_bag
from vla_ros.ros.synthetic_robot import tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config

SECONDS, HZ = 2.0, 10.0
GRIPPER_LEAD_S = 0.5  # the Franka gripper's measured width is compared this much after each step


def header_s(t: float) -> float:
    """`t` as a header stamp carries it (whole nanoseconds), read back in seconds."""
    sec = int(t)
    return sec + round((t - sec) * 1e9) * 1e-9


def expected_metrics(cfg, chunks, ref_quat) -> dict:
    """Per-dimension MAE and gripper accuracy of `chunks` against what the writer commanded, computed here from
    `sweep_target` (not from the bag): targets at each step time, the gripper state written at the last frame
    before step + lead; steps outside the recorded commands' span are not scored."""
    frames = T0_S + FIRST_FRAME_S + np.arange(int(SECONDS * HZ)) / HZ
    lo, hi = header_s(frames[0] + COMMAND_LAG_S), header_s(frames[-1] + COMMAND_LAG_S)
    pred, rec = [], []
    for c in chunks:
        for j, tau in enumerate(step_times(c)):
            if not lo <= tau <= hi:
                continue
            want = sweep_target(cfg, tau - T0_S, SECONDS)
            k = np.searchsorted([header_s(f) for f in frames], tau + GRIPPER_LEAD_S, side="right") - 1
            grip = sweep_target(cfg, frames[k] + COMMAND_LAG_S - T0_S, SECONDS).gripper if k >= 0 else [1.0]
            pred.append(poses_to_actions(c.position_m[j], c.quat_xyzw[j], c.gripper[j], ref_quat)[0])
            rec.append(poses_to_actions(want.position_m, want.quat_xyzw, np.asarray(grip), ref_quat)[0])
    pred, rec = np.array(pred), np.array(rec)
    mae = np.abs(pred - rec).mean(0)
    return {"mae": dict(zip(("x", "y", "z", "rx", "ry", "rz", "gripper"), mae)), "steps": len(pred),
            "gripper_accuracy": float(((pred[:, 6] > 0.5) == (rec[:, 6] > 0.5)).mean())}


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_eval_bag_report_and_ab_modalities(tmp_path, storage):
    from vla_ros.eval.offline import evaluate

    cfg = load_runtime_config("franka")
    bag = write_robot_bag(tmp_path / f"rec_{storage}", cfg, seconds=SECONDS, camera_hz=HZ, storage=storage)
    ckpt = tiny_checkpoint(tmp_path, cfg, "falcon")
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "eval-bag", str(bag), "--config", "franka",
                           "--checkpoint", ckpt, "--out", str(out), "--modalities", "rgb,rgbd", "--stride", "4",
                           "--no-progress"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    rgb, rgbd = report["runs"]["rgb"], report["runs"]["rgbd"]
    assert rgb["frames"] == rgbd["frames"] == 5 and rgb["recorded_actions"] == 20  # frames 0, 4, .. 16 of 20
    assert rgb["modalities_used"] == ["rgb"] and rgbd["modalities_used"] == ["rgb+depth"]
    assert rgb["action_topics"] == ["/franka_gripper/joint_states", "/target_pose"]
    # the same checkpoint in this process: its chunks, scored here against the commanded targets
    _, series = evaluate(bag, cfg, ckpt, ["rgb", "rgbd"], progress=False, stride=4)
    T, dt = report["horizon"], report["dt_s"]
    for mods, r in report["runs"].items():
        assert list(r["arms"]) == ["arm"] and r["model_fps"] > 0 and r["latency_ms"]["median"] > 0
        assert r["chunk_self_consistency"]["pairs"] == (4 if (T - 1) * dt >= 0.4 - 1e-9 else 0)
        m = r["arms"]["arm"]
        want = expected_metrics(cfg, series[mods][0].chunks, report["rotation_ref_quat_xyzw"])
        assert m["scored_steps"] == want["steps"]
        for d, v in want["mae"].items():  # recorded targets are interpolated between 10 Hz commands
            assert m["per_dim"][d]["mae"] == pytest.approx(v, abs=1e-4), d
            assert m["per_dim"][d]["rmse"] >= m["per_dim"][d]["mae"]
        assert m["gripper_accuracy"] == pytest.approx(want["gripper_accuracy"])  # the gripper closes half way
    page = (out / "index.html").read_text()
    for img in ("pred_vs_recorded_arm.png", "latency_hist.png"):
        assert (out / img).stat().st_size > 1000 and img in page


def test_eval_bag_errors_are_clear(tmp_path):
    cfg = load_runtime_config("franka")
    ckpt = tiny_checkpoint(tmp_path, cfg, "baseline")
    widowx_bag = write_robot_bag(tmp_path / "wx", load_runtime_config("widowx"), seconds=0.5)
    for bag, msg in ((tmp_path / "missing", "no such bag"),
                     (widowx_bag, "required topic(s) ['/joint_states'] missing")):  # WidowX: /wx250s/joint_states
        proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "eval-bag", str(bag), "--config", "franka",
                               "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--no-progress"],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 1 and msg in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
