#!/usr/bin/env bash
# Set up (idempotent) and run the main job: `vla-ros demo`, the closed loop in simulation over ROS 2 (MuJoCo
# tabletop + the policy node with the bundled FALCON checkpoint + the executor and Franka adapter, loopback DDS).
# Extra arguments go to `vla-ros demo`, e.g. `--method spatial_forcing --modalities rgb --episodes 9`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( ($$ % 90) + 1 ))}
export MUJOCO_GL=${MUJOCO_GL:-egl}
# one torch thread: the simulator's rendering, DDS and the policy share the cores (two threads: ~500 ms latency)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec .venv/bin/vla-ros demo "$@"
