"""`vla-ros train`: tiny synthetic training saves a loadable checkpoint, resumes, and runs under torchrun (DDP)."""
import json
import os
import subprocess
import sys

import pytest

from vla_ros.policies.factory import load_policy


def _train(*args, torchrun=False, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "vla_ros.cli"] if torchrun else [sys.executable, "-m", "vla_ros.cli"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([*cmd, "train", *args, "--no-progress"], capture_output=True, text=True, timeout=timeout,
                         env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["falcon", "spatialvla"])
def test_tiny_train_saves_and_resumes(method, tmp_path):
    r = _train("--method", method, "--tiny", "--steps", "6", "--batch-size", "4", "--out", str(tmp_path))
    assert r["step"] == 6 and "val_loss" in r
    policy = load_policy(tmp_path / "checkpoint")
    assert policy.method == method
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    r = _train("--method", method, "--tiny", "--steps", "9", "--batch-size", "4", "--out", str(tmp_path))
    assert r["step"] == 9  # resumed from step 6, not restarted
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) >= len(lines)


def test_bad_config_key_is_named(tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("policy: {method: falcon}\nstepz: 10\n")
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "train", "--config", str(cfg)], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 1 and "stepz" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    r = _train("--method", "baseline", "--tiny", "--steps", "4", "--batch-size", "4", "--out", str(tmp_path),
               torchrun=True)
    assert r["step"] == 4
    assert load_policy(tmp_path / "checkpoint").method == "baseline"
