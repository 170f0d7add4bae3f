#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Extra arguments go to pytest, e.g. `-m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( ($$ % 90) + 1 ))}
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1
# pytest exits 5 when it collected no test: that is a failure here, as any non-zero exit is.
exec .venv/bin/python -m pytest test -p no:cacheprovider --timeout=900 -q "$@"
