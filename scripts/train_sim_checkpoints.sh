#!/usr/bin/env bash
# Reproduce the bundled simulation checkpoints (vla_ros/checkpoints/sim_*) and the README's ablation table:
# expert demonstrations -> ESM geometry pretraining -> the five policies, same data and steps -> ablation.
# About 2 h on a 2-core CPU (two jobs at a time, one thread each); a GPU makes the training minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
V=.venv/bin
demos() { [ -f "data/$1/meta.json" ] || $V/python -m vla_ros.sim.demos --out "data/$1" --episodes "$2" --seed "$3"; }
demos sim_demos 300 0 & demos sim_demos_b 750 300 & demos sim_demos_c 750 1050 & wait   # 1800 expert episodes
mkdir -p runs
$V/vla-ros pretrain-esm --config config/train/sim_esm.yaml --no-progress > runs/sim_esm.log 2>&1
train() {  # policies in turn, each checkpoint then copied into the package
  for m in "$@"; do
    $V/vla-ros train --config "config/train/sim_$m.yaml" --no-resume --no-progress > "runs/sim_$m.log" 2>&1
    rm -rf "vla_ros/checkpoints/sim_$m" && cp -r "runs/sim_$m/checkpoint" "vla_ros/checkpoints/sim_$m"
    cp "runs/sim_$m/metrics.jsonl" "vla_ros/checkpoints/sim_$m/metrics.jsonl"
  done
}
train baseline spatial_forcing falcon_rgb & train falcon spatialvla & wait   # two at a time, one thread each
$V/vla-ros ablation --episodes 10 --out docs/ablation
$V/python -m vla_ros.sim.curves --out docs/ablation
