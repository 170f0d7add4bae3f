#!/usr/bin/env bash
# Reproduce the bundled simulation checkpoints (vla_ros/checkpoints/sim_*) and the README's ablation table:
# expert demonstrations -> ESM geometry pretraining -> the five policies, same data and steps (stage 1 on the
# training camera range, stage 2 fine-tuned with recovery demonstrations added; FALCON on the compact model, or with
# FALCON_REFERENCE=1 the reference's two stages: without, then with the frozen ESM) -> ablation (on the tasks' range).
# About 3 h on a 2-core CPU (two jobs at a time, one thread each); a GPU makes the training minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
V=.venv/bin
demos() { [ -f "data/$1/meta.json" ] || $V/python -m vla_ros.sim.demos --out "data/$1" --episodes "$2" --seed "$3" "${@:4}"; }
W=--wide-camera   # the training camera range (WIDE_CAMERA), wider than the tasks' (CameraRange())
demos sim_demos 300 0 $W & demos sim_demos_b 750 300 $W & demos sim_demos_c 750 1050 $W & wait   # 1800
demos sim_demos_d 450 20000 $W --perturb & demos sim_demos_e 450 30000 $W --perturb & wait   # 900 pushed
mkdir -p data runs
$V/vla-ros pretrain-esm --config config/train/sim_esm.yaml --no-progress > runs/sim_esm.log 2>&1
train() {  # policies in turn, both stages; each final checkpoint then copied into the package (as sim_$2 if given)
  local m=$1 dest=sim_${2:-$1}
  $V/vla-ros train --config "config/train/sim_$m.yaml" --no-resume --no-progress > "runs/sim_$m.log" 2>&1
  $V/vla-ros train --config "config/train/sim_$m.yaml" --init-from "runs/sim_$m/checkpoint" --steps 4000 \
    --lr 0.0003 --dataset data/sim_demos data/sim_demos_b data/sim_demos_c data/sim_demos_d data/sim_demos_e \
    --out "runs/sim_${m}_ft" --no-resume --no-progress > "runs/sim_${m}_ft.log" 2>&1
  rm -rf "vla_ros/checkpoints/$dest" && cp -r "runs/sim_${m}_ft/checkpoint" "vla_ros/checkpoints/$dest"
  cp "runs/sim_$m/metrics.jsonl" "vla_ros/checkpoints/$dest/metrics.jsonl"   # from scratch: the curves
  cp "runs/sim_${m}_ft/metrics.jsonl" "vla_ros/checkpoints/$dest/metrics_stage2.jsonl"
}
falcon_reference() {  # the reference recipe: stage 1 without the ESM (shared), stage 2 per variant from it (ESM
  # frozen), after stage 0's grounded pretraining of the from-scratch Kosmos-2 (README, FALCON section). Not yet
  # run through to the ablation, so the bundled FALCONs stay the compact models unless FALCON_REFERENCE=1.
  $V/vla-ros pretrain-esm --config config/train/sim_esm_reference.yaml --no-progress > runs/sim_esm_reference.log 2>&1
  $V/vla-ros train --config config/train/sim_falcon_stage0.yaml --no-resume --no-progress > runs/sim_falcon_stage0.log 2>&1
  $V/vla-ros train --config config/train/sim_falcon_stage1.yaml --no-resume --no-progress > runs/sim_falcon_stage1.log 2>&1
  for m in falcon falcon_rgb; do
    $V/vla-ros train --config "config/train/sim_$m.yaml" --no-resume --no-progress > "runs/sim_$m.log" 2>&1
    rm -rf "vla_ros/checkpoints/sim_$m" && cp -r "runs/sim_$m/checkpoint" "vla_ros/checkpoints/sim_$m"
    cp "runs/sim_$m/metrics.jsonl" "vla_ros/checkpoints/sim_$m/metrics_stage2.jsonl"
  done
  # stage 1 (no ESM) is shared: its from-scratch curve is drawn once, as sim_falcon's
  cp runs/sim_falcon_stage1/metrics.jsonl vla_ros/checkpoints/sim_falcon/metrics.jsonl
}
falcon() {
  if [ "${FALCON_REFERENCE:-0}" = 1 ]; then falcon_reference; else train falcon_compact falcon; train falcon_rgb_compact falcon_rgb; fi
}
(for m in baseline spatial_forcing spatialvla pi0; do train $m; done) & (falcon; train pi0_sf) & wait   # two at a time
$V/vla-ros ablation --episodes 50 --out docs/ablation --camera-shift   # the table: 150 a row in both columns
$V/python -m vla_ros.sim.curves --out docs/ablation
