"""`vla-ros export-dataset BAGS... --config ROBOT --out DIR`: recordings -> training dataset (+ norm stats); the
format is docs/dataset_format.md, read by `vla-ros train` (`dataset:` in the train config)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HELP = "export rosbag2 recordings to the training dataset format"


def add_arguments(parser) -> None:
    parser.add_argument("bags", nargs="+", help="rosbag2 folders (one episode each)")
    parser.add_argument("--config", required=True, help="robot config (name or YAML)")
    parser.add_argument("--out", required=True, help="dataset folder")
    parser.add_argument("--actions", default="auto", choices=("auto", "command", "executor"),
                        help="recorded actions to learn: the robot's command topics or the executor's commanded poses")
    parser.add_argument("--msg-dir", action="append", default=[], help="folder of <pkg>/msg/*.msg custom types")


def run(args) -> int:
    from vla_ros.core.config import ConfigError
    from vla_ros.data.bags import BagError
    from vla_ros.data.dataset import DatasetError
    from vla_ros.data.export import export
    from vla_ros.runtime_config import load_runtime_config

    try:
        reports = export(args.bags, load_runtime_config(args.config), args.out, args.actions,
                         [Path(d) for d in args.msg_dir])
    except (ConfigError, BagError, DatasetError, OSError) as exc:
        print(f"vla-ros export-dataset: {exc}", file=sys.stderr)
        return 1
    for rep in reports:
        for p in rep["problems"] + [f"{rep['bag']}: recorded actions: skipped {k} x{n}"
                                    for k, n in rep["skipped_actions"].items()]:
            print(f"vla-ros export-dataset: warning: {p}", file=sys.stderr)
    print(json.dumps({"out": args.out, "episodes": reports}, indent=1))
    return 0
