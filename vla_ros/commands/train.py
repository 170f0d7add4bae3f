"""`vla-ros train`: `--method M --tiny --steps N --out DIR` (the tiny config on synthetic batches: a quick check
of a new machine) or `--config CFG.yaml` (a TrainConfig: dataset dir, policy config, steps, batch size, lr,
eval/checkpoint intervals, seed, out dir). Flags given on the command line override the file. Works under
`torchrun --nproc_per_node N -m vla_ros.cli train ...` for DDP (gloo on CPU, nccl on CUDA)."""
from __future__ import annotations

import json
import os
import sys

HELP = "train a policy (tiny synthetic check, or a dataset from a config)"


def add_arguments(parser) -> None:
    from vla_ros.core.constants import TRAINABLE_METHODS

    parser.add_argument("--config", help="TrainConfig YAML (dataset, policy, steps, batch_size, lr, ...)")
    parser.add_argument("--method", choices=TRAINABLE_METHODS,
                        help="policy method (with --tiny, or overriding --config)")
    parser.add_argument("--tiny", action="store_true", help="the tiny config of --method on synthetic batches")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--ckpt-every", type=int)
    parser.add_argument("--dataset", nargs="+", help="dataset folder(s) (vla_ros dataset format)")
    parser.add_argument("--init-from", help="start from this checkpoint's weights and norm stats (fine-tuning)")
    parser.add_argument("--out")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-resume", action="store_true", help="start over even if OUT holds a train state")
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from vla_ros.core.config import ConfigError, from_dict, load_yaml, override, to_dict
    from vla_ros.core.normalize import NormStatsError
    from vla_ros.policies.checkpoint_io import CheckpointError
    from vla_ros.training.trainer import TrainConfig, train

    try:
        if args.config:
            base = load_yaml(TrainConfig, args.config)
            changes = {"policy": {**base.policy, "method": args.method}} if args.method else {}
        elif args.method and args.tiny:
            from vla_ros.policies.factory import tiny_config

            tiny = {"policy": to_dict(tiny_config(args.method)), "out": f"runs/tiny_{args.method}", "eval_every": 25,
                    "ckpt_every": 50}
            base = from_dict(TrainConfig, tiny)
            changes = {}
        else:
            print("vla-ros train: give --config CFG.yaml, or --method M --tiny", file=sys.stderr)
            return 2
        flags = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "eval_every": args.eval_every,
                 "ckpt_every": args.ckpt_every, "dataset": args.dataset, "out": args.out, "device": args.device,
                 "seed": args.seed, "init_from": args.init_from, "resume": False if args.no_resume else None}
        cfg = override(base, {**changes, **{k: v for k, v in flags.items() if v is not None}})
        result = train(cfg, progress=not args.no_progress)
    except (ConfigError, CheckpointError, NormStatsError, FileNotFoundError, ValueError) as exc:
        print(f"vla-ros train: {exc}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({"out": cfg.out, "checkpoint": f"{cfg.out}/checkpoint", **result}))
    return 0
