"""Build vla_ros's own interfaces and the robot/tf2 interfaces for a pip-based checkout.

`python -m vla_ros.devtools.build_all REPO` (run by scripts/setup.sh):
- stages package.xml, CMakeLists.txt and msg/ into .build/ws (the venv lives inside the checkout, and
  CMake refuses exported include dirs under the source dir) and runs `colcon build` with
  -DVLA_ROS_INSTALL_PYTHON=OFF: only the generated `vla_ros.msg` goes to the install space, the
  library itself stays the editable checkout;
- builds interfaces/* (tf2_msgs, franka_msgs, piper_msgs, interbotix_xs_msgs) the same way;
- writes `ros_0_vla_ros_interfaces.pth` into site-packages. It sorts before the ROS 2 wheels'
  `ros_wheels_bootstrapper.pth`, which re-executes Python with LD_LIBRARY_PATH set, so the install
  spaces' lib/ reach the dynamic loader and their site-packages reach sys.path in every process.
Both builds are cached by a hash of their inputs.
"""
from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

from vla_ros.devtools.interfaces import _digest, build_interfaces, colcon_build

PTH_NAME = "ros_0_vla_ros_interfaces.pth"
PTH_SOURCE = """
libs = {libs!r}
sites = {sites!r}
old = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [p for p in old if p not in libs])
sys.path.extend(s for s in sites if s not in sys.path)
"""
STAGED = ("package.xml", "CMakeLists.txt", "msg", "launch", "config")


def build_vla_ros_msgs(repo: Path) -> Path:
    base = repo / ".build" / "ws"
    key = _digest({"vla_ros": repo / "msg"}) + _digest({"cmake": repo / "package.xml"})[:4]
    if (base / "BUILT").exists() and (base / "BUILT").read_text().strip() == key:
        return base / "install"
    if base.exists():
        shutil.rmtree(base)
    src = base / "src" / "vla_ros"
    src.mkdir(parents=True)
    for name in STAGED:
        path = repo / name
        (shutil.copytree if path.is_dir() else shutil.copy)(path, src / name)
    print("[setup] colcon build vla_ros interfaces", flush=True)
    install = colcon_build(base / "src", base, ["-DVLA_ROS_INSTALL_PYTHON=OFF"])
    (base / "BUILT").write_text(key + "\n")
    return install


def write_pth(installs: list[Path]) -> Path:
    libs, sites = [], []
    for install in installs:
        for pkg in sorted(p for p in install.iterdir() if p.is_dir()):
            if (pkg / "lib").is_dir():
                libs.append(str(pkg / "lib"))
            sites += [str(s) for s in sorted((pkg / "lib").glob("python3*/site-packages"))]
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    code = PTH_SOURCE.format(libs=libs, sites=sites)
    # A .pth line runs inside site.addpackage(); give the code its own globals so comprehensions work.
    pth.write_text(f"import os, sys; exec({code!r}, {{'os': os, 'sys': sys}})\n")
    return pth


def main(argv: list[str]) -> int:
    repo = Path(argv[1] if len(argv) > 1 else ".").resolve()
    own = build_vla_ros_msgs(repo)
    folders = {p.name: p for p in sorted((repo / "interfaces").iterdir()) if p.is_dir()}
    print("[setup] robot/tf2 interfaces:", ", ".join(folders), flush=True)
    robots = build_interfaces(folders, repo / ".build" / "interfaces")
    pth = write_pth([own, robots])
    print(f"[setup] interfaces importable via {pth}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
