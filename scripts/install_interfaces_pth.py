#!/usr/bin/env python3
"""Expose a colcon install space of vla_ros's interfaces to this venv without sourcing setup.bash.

Writes `ros_0_vla_ros_interfaces.pth` into the venv's site-packages. It sorts before the ROS 2 wheels'
`ros_wheels_bootstrapper.pth`, which re-executes Python with LD_LIBRARY_PATH set; prepending our
install space's lib/ there lets rosidl dlopen the generated typesupport libraries, and appending its
site-packages lets `vla_ros.msg` import next to the editable `vla_ros` sources (see vla_ros/__init__.py).
"""
import sys
import sysconfig
from pathlib import Path

TEMPLATE = (
    "import os, sys; "
    "_l = {lib!r}; _p = os.environ.get('LD_LIBRARY_PATH', ''); "
    "os.environ['LD_LIBRARY_PATH'] = _p if _l in _p.split(os.pathsep) else os.pathsep.join(filter(None, [_l, _p])); "
    "sys.path.append({site!r})\n"
)


def main(argv: list[str]) -> int:
    install = Path(argv[1]).resolve() / "vla_ros"
    site = install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    if not (site / "vla_ros" / "msg").is_dir():
        print(f"install_interfaces_pth: no generated vla_ros.msg under {site}", file=sys.stderr)
        return 1
    pth = Path(sysconfig.get_paths()["purelib"]) / "ros_0_vla_ros_interfaces.pth"
    pth.write_text(TEMPLATE.format(lib=str(install / "lib"), site=str(site)))
    print(f"install_interfaces_pth: wrote {pth}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
