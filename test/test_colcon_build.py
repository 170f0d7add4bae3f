"""`colcon build` of the package in a fresh workspace, as on a robot, then import from the install space."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vla_ros.devtools.interfaces import colcon_build

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ("package.xml", "CMakeLists.txt", "setup.py", "setup.cfg", "README.md", "resource", "msg",
                 "vla_ros", "launch", "config", "scripts")

CHECK = """
import sys, vla_ros, vla_ros.core.types
from vla_ros.msg import ActionChunk
assert vla_ros.__file__.startswith(sys.argv[1]), vla_ros.__file__
import vla_ros.msg
assert vla_ros.msg.__file__.startswith(sys.argv[1]), vla_ros.msg.__file__
m = ActionChunk(horizon=3)
from vla_ros.runtime_config import load_runtime_config, resolve_config_path
assert str(resolve_config_path("franka")).startswith(sys.argv[1]), resolve_config_path("franka")
assert load_runtime_config("franka").robot == "franka"
print("OK", m.horizon, ActionChunk.REFERENCE_DELTA_MEASURED)
"""


@pytest.mark.slow
def test_colcon_build_and_import_from_install(tmp_path):
    src = tmp_path / "ws" / "src" / "vla_ros"
    src.mkdir(parents=True)
    for name in PACKAGE_FILES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "checkpoints"))
        elif path.exists():
            shutil.copy(path, src / name)
    install = colcon_build(tmp_path / "ws" / "src", tmp_path / "ws")
    site = next((install / "vla_ros" / "lib").glob("python3*/site-packages"))
    assert (site / "vla_ros" / "msg" / "__init__.py").exists()
    assert (site / "vla_ros" / "core" / "types.py").exists(), "library sources not installed beside the messages"
    assert (install / "vla_ros" / "share" / "vla_ros" / "package.xml").exists()
    assert (install / "vla_ros" / "lib" / "vla_ros" / "policy_node").exists(), "ros2 run executables missing"
    # Source the install space as a robot user would, from outside the checkout.
    setup = install / "setup.bash"
    cmd = f'source "{setup}" && "{sys.executable}" -c \'{CHECK}\' "{install}"'
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    out = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK 3 2" in out.stdout
