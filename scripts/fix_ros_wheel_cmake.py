#!/usr/bin/env python3
"""Point the ROS 2 PyPI wheels' CMake exports at this interpreter's real include dirs.

The message wheels are built in a manylinux image and their `share/*/cmake/*.cmake` exports name
`/opt/python/cp311-cp311/...` include dirs that do not exist elsewhere, which breaks any rosidl build
against them. Rewriting the paths inside the venv needs no root (a symlink under /opt would).
Idempotent: a second run finds nothing to rewrite.
"""
import sys
import sysconfig
from pathlib import Path

import numpy

WHEEL_PY_INCLUDE = "/opt/python/cp311-cp311/include/python3.11"
WHEEL_NP_INCLUDE = "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"


def main() -> int:
    prefix = Path(sys.prefix)
    real = {WHEEL_PY_INCLUDE: sysconfig.get_paths()["include"], WHEEL_NP_INCLUDE: numpy.get_include()}
    changed = 0
    for cmake in prefix.glob("share/*/cmake/*.cmake"):
        text = cmake.read_text()
        if "/opt/python/cp311-cp311" not in text:
            continue
        for old, new in real.items():
            text = text.replace(old, new)
        cmake.write_text(text)
        changed += 1
    print(f"fix_ros_wheel_cmake: rewrote {changed} CMake export file(s) under {prefix}/share")
    return 0


if __name__ == "__main__":
    sys.exit(main())
