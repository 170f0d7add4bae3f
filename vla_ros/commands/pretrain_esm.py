"""`vla-ros pretrain-esm --dataset DIR --out DIR [--steps N] [--config CFG.yaml]`: geometry pretraining of a
(tiny) Embodied Spatial Model on a dataset's depth and camera poses; the output folder is what FALCON's
`esm_checkpoint` and Spatial Forcing's `teacher_checkpoint` take."""
from __future__ import annotations

import json
import sys

HELP = "pretrain an Embodied Spatial Model on depth and camera-pose supervision"


def add_arguments(parser) -> None:
    parser.add_argument("--config", help="ESMPretrainConfig YAML (esm sizes, dataset, steps, ...)")
    parser.add_argument("--dataset", help="dataset folder (vla_ros dataset format, with depth)")
    parser.add_argument("--out", help="output folder (model.safetensors, config.yaml, metrics.jsonl)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from vla_ros.core.config import ConfigError, from_dict, load_yaml, override
    from vla_ros.data.dataset import DatasetError
    from vla_ros.training.esm_pretrain import ESMPretrainConfig, pretrain

    try:
        flags = {"dataset": args.dataset, "out": args.out, "steps": args.steps, "batch_size": args.batch_size,
                 "seed": args.seed}
        given = {k: v for k, v in flags.items() if v is not None}
        if args.config:
            cfg = override(load_yaml(ESMPretrainConfig, args.config), given)
        else:
            cfg = from_dict(ESMPretrainConfig, given)
        result = pretrain(cfg, progress=not args.no_progress)
    except (ConfigError, DatasetError, FileNotFoundError, ValueError) as exc:
        print(f"vla-ros pretrain-esm: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"out": cfg.out, **result}))
    return 0
