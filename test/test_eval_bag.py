"""`vla-ros eval-bag` on recorded robot bags (MCAP and sqlite3): observations through the live converters,
metrics against the recorded commands, report.json + PNG plots + index.html, A/B over modalities."""
import json
import subprocess
import sys

import pytest

from vla_ros.data.bag_writer import write_robot_bag
from vla_ros.ros.synthetic_robot import tiny_checkpoint
from vla_ros.runtime_config import load_runtime_config


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_eval_bag_report_and_ab_modalities(tmp_path, storage):
    cfg = load_runtime_config("franka")
    bag = write_robot_bag(tmp_path / f"rec_{storage}", cfg, seconds=2.0, storage=storage)
    ckpt = tiny_checkpoint(tmp_path, cfg, "falcon")
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "eval-bag", str(bag), "--config", "franka",
                           "--checkpoint", ckpt, "--out", str(out), "--modalities", "rgb,rgbd", "--no-progress"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    rgb, rgbd = report["runs"]["rgb"], report["runs"]["rgbd"]
    assert rgb["frames"] == rgbd["frames"] == 20
    assert rgb["modalities_used"] == ["rgb"] and rgbd["modalities_used"] == ["rgb+depth"]
    for r in (rgb, rgbd):
        assert set(r["per_dim"]) == {"x", "y", "z"} and r["per_dim"]["x"]["rmse_m"] >= r["per_dim"]["x"]["mae_m"]
        assert r["chunk_self_consistency_m"] is not None and r["model_fps"] > 0
        assert 0.0 <= r["gripper_accuracy"] <= 1.0  # the recorded gripper closes half way
    page = (out / "index.html").read_text()
    for img in ("pred_vs_recorded.png", "latency_hist.png"):
        assert (out / img).stat().st_size > 1000 and img in page


def test_eval_bag_errors_are_clear(tmp_path):
    cfg = load_runtime_config("franka")
    ckpt = tiny_checkpoint(tmp_path, cfg, "baseline")
    widowx_bag = write_robot_bag(tmp_path / "wx", load_runtime_config("widowx"), seconds=0.5)
    for bag, msg in ((tmp_path / "missing", "no such bag"), (widowx_bag, "no valid observation")):
        proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "eval-bag", str(bag), "--config", "franka",
                               "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--no-progress"],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 1 and msg in proc.stderr and "Traceback" not in proc.stderr
