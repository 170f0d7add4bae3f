"""The `vla-ros` command. Each subcommand lives in `vla_ros/commands/<name>.py` and exposes
`HELP`, `add_arguments(parser)` and `run(args) -> int`; they are imported lazily, so `vla-ros --help`
stays fast and a robot PC without torch can still run `vla-ros bag-info`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("demo", "closed-loop demo in simulation over ROS 2 (bundled checkpoints)"),
    "smoke": ("smoke", "end-to-end ROS 2 smoke run over loopback DDS"),
    "run": ("run", "start policy node + executor + adapter for a robot in one process"),
    "serve": ("serve", "serve a policy over openpi's websocket protocol (policy on a GPU host)"),
    "train": ("train", "train a policy (tiny synthetic check, or a dataset from a config)"),
    "pretrain-esm": ("pretrain_esm", "pretrain an Embodied Spatial Model on depth and camera poses"),
    "bag-info": ("bag_info", "summarise a rosbag2 (sqlite3 or MCAP)"),
    "eval-bag": ("eval_bag", "offline evaluation of a checkpoint on a rosbag2"),
    "replay": ("replay", "publish a rosbag2's messages with their original timing"),
    "export-dataset": ("export_dataset", "export rosbag2 recordings to the training dataset format"),
    "ablation": ("ablation", "closed-loop ablation of the bundled sim checkpoints"),
    "bench": ("bench", "measure the pipeline on this machine and print JSON"),
    "doctor": ("doctor", "check DDS transport of the robot's camera topics (delivery, rate, latency)"),
    "checkpoint": ("checkpoint", "inspect a checkpoint folder: method, parameters, key coverage, norm keys, card"),
}


def _load(module: str):
    return importlib.import_module(f"vla_ros.commands.{module}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="vla-ros", description="Spatial VLA policies on ROS 2 robot arms.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name in argv[:1]:
            _load(module).add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(_load(args._module).run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
