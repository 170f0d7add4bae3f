"""The core (models, tokenizers, chunking, safety, conversions, bags) never imports rclpy."""
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import vla_ros

# Packages allowed to import rclpy: the ROS shells, the CLI commands that start nodes, dev tooling.
ROS_SIDE = ("vla_ros.ros", "vla_ros.commands", "vla_ros.msg", "vla_ros.devtools")

PROBE = """
import importlib, json, sys
mods = json.loads(sys.argv[1])
failed = {}
for m in mods:
    try:
        importlib.import_module(m)
    except ImportError as exc:  # an optional extra (e.g. mujoco) that is absent is not this test's concern
        failed[m] = str(exc)
print(json.dumps({"rclpy": "rclpy" in sys.modules, "failed": failed,
                  "ros_mods": sorted(k for k in sys.modules if k.startswith(("rclpy", "rcl_interfaces")))}))
"""


def core_modules() -> list[str]:
    root = Path(vla_ros.__file__).parent
    mods = ["vla_ros"]
    for info in pkgutil.walk_packages([str(root)], prefix="vla_ros."):
        if not info.name.startswith(ROS_SIDE) and not info.name.endswith("__main__"):
            mods.append(info.name)
    return mods


def test_the_probe_covers_every_core_module_file():
    """Every .py file outside the ROS side is a module the probe below imports: a folder left without an
    __init__.py would otherwise drop out of the walk, and out of the check, silently."""
    root = Path(vla_ros.__file__).parent
    on_disk = set()
    for f in root.rglob("*.py"):
        parts = f.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith(ROS_SIDE) and not name.endswith("__main__"):
            on_disk.add(name)
    mods = core_modules()
    assert len(mods) == len(set(mods))
    assert set(mods) == on_disk, {"not probed": sorted(on_disk - set(mods)), "not a file": sorted(set(mods) - on_disk)}
    assert {"vla_ros.core.observation_feed", "vla_ros.data.bag_observations", "vla_ros.sim.env"} <= on_disk


def test_core_never_imports_rclpy():
    mods = core_modules()
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(mods)], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["failed"], f"core modules failed to import: {result['failed']}"
    assert result["rclpy"] is False, f"rclpy imported by the core: {result['ros_mods']}"
