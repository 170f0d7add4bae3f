#!/usr/bin/env bash
# Reproduce the bundled simulation checkpoints (vla_ros/checkpoints/sim_*) and the README's ablation table:
# expert demonstrations -> ESM geometry pretraining -> the five policies, same data and steps -> ablation.
# About 2 h on a 2-core CPU (two trainings at a time, one thread each); a GPU makes it minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
V=.venv/bin
[ -f data/sim_demos/meta.json ] || $V/python -m vla_ros.sim.demos --out data/sim_demos --episodes 300 --seed 0
$V/vla-ros pretrain-esm --config config/train/sim_esm.yaml --no-progress
train() {  # one policy, then copy its checkpoint into the package
  $V/vla-ros train --config "config/train/sim_$1.yaml" --no-resume --no-progress > "runs/sim_$1.log" 2>&1
  rm -rf "vla_ros/checkpoints/sim_$1" && cp -r "runs/sim_$1/checkpoint" "vla_ros/checkpoints/sim_$1"
  cp "runs/sim_$1/metrics.jsonl" "vla_ros/checkpoints/sim_$1/metrics.jsonl"
}
mkdir -p runs
train baseline & train falcon_rgb & wait
train falcon & train spatial_forcing & wait
train spatialvla
$V/vla-ros ablation --episodes 30 --out docs/ablation
$V/python -m vla_ros.sim.curves --out docs/ablation
