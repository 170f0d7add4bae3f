"""`vla-ros demo` end to end: the simulator node, the policy node with the bundled checkpoint and the executor
with the Franka adapter over loopback DDS, two episodes, the report folder; and the executor's reset service."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("mujoco")
pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_two_episode_demo_with_the_bundled_checkpoint(tmp_path, robot_interfaces):
    out = tmp_path / "report"
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "demo", "--episodes", "2", "--max-time-s", "6",
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from test_shutdown_ros import error_lines

    assert not error_lines(proc.stdout + proc.stderr), "the demo must end without an exception or error line"
    printed = json.loads(proc.stdout[proc.stdout.index("{"):])
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "falcon" and "checkpoints/sim_falcon" in report["checkpoint"]
    assert len(report["episodes"]) == 2 and [e["task"] for e in report["episodes"]] == ["place_on_platform",
                                                                                        "stack_by_size"]
    s = report["summary"]
    assert printed["episodes"] == 2 and printed["success_rate"] == s["success_rate"]
    assert s["latency_ms"]["samples"] > 5 and 0 < s["latency_ms"]["median"] < 2000
    for e in report["episodes"]:
        assert 0 < e["time_s"] <= 6.0 + 0.5 and e["instruction"]
    c = report["counters"]
    assert c["executor"]["commands"] > 20 and c["executor"]["resets"] == 2  # actuated, reset per episode
    assert c["sim"]["targets"] > 20 and c["sim"]["rejected_targets"] == 0  # the adapter's commands reached the sim
    assert c["policy"]["chunks"] > 5 and not c["policy"].get("inference_errors")
    for name in ("success.png", "latency.png", "episode.gif", "index.html"):
        assert (out / name).stat().st_size > 500
    assert "episode.gif" in (out / "index.html").read_text()


def test_demo_names_a_missing_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "demo", "--checkpoint", str(tmp_path / "nope"),
                           "--episodes", "1", "--out", str(tmp_path / "r")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 1 and "nope" in proc.stderr and "Traceback" not in proc.stderr
