#!/usr/bin/env bash
# Reproduce the bundled simulation checkpoints (vla_ros/checkpoints/sim_*) and the README's ablation table:
# expert demonstrations -> ESM geometry pretraining -> the five policies, same data and steps -> ablation.
# About 2.5 h on a 2-core CPU (two jobs at a time, one thread each); a GPU makes the training minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
V=.venv/bin
demos() { [ -f "data/$1/meta.json" ] || $V/python -m vla_ros.sim.demos --out "data/$1" --episodes "$2" --seed "$3"; }
demos sim_demos 300 0 & demos sim_demos_b 750 300 & demos sim_demos_c 750 1050 & wait   # 1800 expert episodes
mkdir -p runs
$V/vla-ros pretrain-esm --config config/train/sim_esm.yaml --no-progress > runs/sim_esm.log 2>&1 &
train() {  # one policy, then copy its checkpoint into the package
  $V/vla-ros train --config "config/train/sim_$1.yaml" --no-resume --no-progress > "runs/sim_$1.log" 2>&1
  rm -rf "vla_ros/checkpoints/sim_$1" && cp -r "runs/sim_$1/checkpoint" "vla_ros/checkpoints/sim_$1"
  cp "runs/sim_$1/metrics.jsonl" "vla_ros/checkpoints/sim_$1/metrics.jsonl"
}
train baseline & wait   # the ESM (FALCON's spatial model, Spatial Forcing's teacher) is ready after this
train falcon & train spatial_forcing & wait
train falcon_rgb & train spatialvla & wait
$V/vla-ros ablation --episodes 30 --out docs/ablation
$V/python -m vla_ros.sim.curves --out docs/ablation
