#!/usr/bin/env bash
# Set up (idempotent) and run the main job. Until the simulator demo lands (issue 7) that is `vla-ros smoke`:
# the real policy node, executor and Franka adapter on loopback DDS, fed by a synthetic robot.
# Extra arguments go to `vla-ros smoke`, e.g. `--robot agilex --seconds 20`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( ($$ % 90) + 1 ))}
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec .venv/bin/vla-ros smoke "$@"
