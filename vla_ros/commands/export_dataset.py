"""`vla-ros export-dataset BAGS... --config ROBOT --out DIR`: recordings -> training dataset (+ norm stats)."""
from __future__ import annotations

import json
import sys

HELP = "export rosbag2 recordings to the training dataset format"


def add_arguments(parser) -> None:
    parser.add_argument("bags", nargs="+")
    parser.add_argument("--config", required=True, help="robot config (name or YAML)")
    parser.add_argument("--out", required=True)


def run(args) -> int:
    from vla_ros.core.config import ConfigError
    from vla_ros.data.bags import BagError
    from vla_ros.data.dataset import DatasetError
    from vla_ros.data.export import export
    from vla_ros.runtime_config import load_runtime_config

    try:
        reports = export(args.bags, load_runtime_config(args.config), args.out)
    except (ConfigError, BagError, DatasetError) as exc:
        print(f"vla-ros export-dataset: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"out": args.out, "episodes": reports}, indent=1))
    return 0
