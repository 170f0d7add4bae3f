#!/usr/bin/env bash
# Set up (or refresh) the development environment in ./.venv. Idempotent: a second run with nothing
# changed only checks stamps and takes a few seconds.
#   1. a Python 3.11 venv with ROS 2 Kilted from PyPI wheels, PyTorch (CPU) and the rest (pinned);
#   2. the wheels' CMake exports pointed at this machine's include dirs;
#   3. `colcon build` of vla_ros's interfaces (msg/) and of the robot/tf2 interfaces in interfaces/;
#   4. a .pth hook so `from vla_ros.msg import ActionChunk` works beside the editable `vla_ros`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VLA_ROS_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp
say() { printf '[setup] %s\n' "$*"; }
t0=$(date +%s)

command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
  echo "[setup] Python 3.11 is required (the ROS 2 Kilted PyPI wheels are cp311); found $("$PY" --version 2>&1)" >&2
  exit 1
}
if command -v cmake >/dev/null && command -v g++ >/dev/null; then :; else
  say "cmake and g++ are needed to build the ROS interfaces; installing them with apt-get"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq cmake g++ >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq cmake g++ >/dev/null; fi
fi

[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
VPY=$VENV/bin/python

# 1. Python packages, pinned; skipped when the requirement files have not changed.
req_hash=$(cat requirements/*.txt setup.cfg setup.py | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.vla_ros_deps" 2>/dev/null)" != "$req_hash" ]; then
  say "installing Python packages (ROS 2 wheels, torch, mujoco, rosbags, ...); log: $VENV/pip.log"
  pipi() { "$VPY" -m pip install --disable-pip-version-check -c requirements/constraints.txt "$@" >>"$VENV/pip.log" 2>&1 \
    || { tail -30 "$VENV/pip.log" >&2; echo "[setup] pip install $* failed" >&2; exit 1; }; }
  : > "$VENV/pip.log"
  pipi --upgrade "pip>=23" wheel "setuptools<80"
  pipi -r requirements/ros.txt
  pipi --no-build-isolation -e ".[policy,bags,sim,vision,test,pi0]" --config-settings editable_mode=compat
  "$VPY" -c 'import rclpy, torch, rosbags, mujoco' || { echo "[setup] package install failed" >&2; exit 1; }
  echo "$req_hash" > "$VENV/.vla_ros_deps"
fi

# 2. The wheels' CMake exports name /opt/python/cp311-cp311 include dirs; point them at ours.
"$VPY" scripts/fix_ros_wheel_cmake.py >/dev/null

# 3 + 4. Interfaces, rebuilt only when their definitions change.
"$VPY" -m vla_ros.devtools.build_all "$ROOT"

say "ready in $(( $(date +%s) - t0 )) s: $VENV"
