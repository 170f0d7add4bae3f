"""The `vla-ros` command: subcommands listed, and the ROS smoke run over loopback DDS in a subprocess."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vla_ros.cli import SUBCOMMANDS

VLA_ROS = shutil.which("vla-ros", path=str(Path(sys.executable).parent))


def _run(*args, timeout=120):
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return subprocess.run([VLA_ROS, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def test_help_lists_every_subcommand():
    out = _run("--help")
    assert out.returncode == 0
    for name in ("smoke", "train", "bag-info", "bench", "run"):
        assert name in SUBCOMMANDS and name in out.stdout


def test_every_subcommand_module_has_the_interface():
    import importlib

    for name, (module, _) in SUBCOMMANDS.items():
        mod = importlib.import_module(f"vla_ros.commands.{module}")
        assert callable(mod.add_arguments) and callable(mod.run), name


@pytest.mark.ros
def test_smoke_runs_the_whole_stack_over_dds(robot_interfaces):
    out = _run("smoke", "--seconds", "4")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout[out.stdout.index("{"):])
    assert report["ok"] and report["domain_id"] == os.environ["ROS_DOMAIN_ID"]
    assert report["chunks"] >= 2 and report["commands"] >= 5
    assert report["modalities"] == ["rgb", "depth", "pose"]  # synced RGB-D + tf pose: every input used
