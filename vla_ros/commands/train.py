"""`vla-ros train`: `--method M --tiny --steps N --out DIR` (synthetic batches, a quick check of a new machine)
or `--config CFG.yaml` (a TrainConfig: dataset, policy, steps, ...). Works under `torchrun` for DDP."""
from __future__ import annotations

import json
import os
import sys

HELP = "train a policy (tiny synthetic check, or a dataset from a config)"


def add_arguments(parser) -> None:
    parser.add_argument("--config", help="TrainConfig YAML (dataset, policy, steps, ...)")
    parser.add_argument("--method", choices=("baseline", "falcon", "spatial_forcing", "spatialvla"))
    parser.add_argument("--tiny", action="store_true", help="the tiny config of --method on synthetic batches")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--out")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from vla_ros.core.config import ConfigError, from_dict, load_yaml, to_dict
    from vla_ros.training.checkpoint import CheckpointError
    from vla_ros.training.trainer import TrainConfig, train

    try:
        if args.config:
            cfg = load_yaml(TrainConfig, args.config)
        elif args.method and args.tiny:
            from vla_ros.policies.factory import tiny_config

            cfg = from_dict(TrainConfig, {"policy": to_dict(tiny_config(args.method)),
                                          "out": f"runs/tiny_{args.method}", "eval_every": 25, "ckpt_every": 50})
        else:
            print("vla-ros train: give --config CFG.yaml, or --method M --tiny", file=sys.stderr)
            return 2
        overrides = {k: v for k, v in {"steps": args.steps, "batch_size": args.batch_size, "out": args.out,
                                       "device": args.device, "seed": args.seed}.items() if v is not None}
        cfg = from_dict(TrainConfig, {**to_dict(cfg), **overrides})
        result = train(cfg, progress=not args.no_progress)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"vla-ros train: {exc}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({"out": cfg.out, "checkpoint": f"{cfg.out}/checkpoint", **result}))
    return 0
