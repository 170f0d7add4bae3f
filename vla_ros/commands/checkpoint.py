"""`vla-ros checkpoint inspect PATH`: method, parameter count, key coverage, norm keys and card of a checkpoint
folder (a vla_ros checkpoint or a released layout such as an HF SpatialVLA folder). Reads headers only."""
from __future__ import annotations

import sys

HELP = "inspect a checkpoint folder (vla_ros or a released layout)"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("inspect", help="print method, parameter count, key coverage, norm keys and card")
    p.add_argument("path", help="checkpoint folder")
    p.add_argument("--card", default="", help="card name (shipped) or YAML path; default: matched by folder name")
    p.add_argument("--esm", default="", help="a released FALCON checkpoint's ESM folder")
    p.add_argument("--load-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a released checkpoint's load option (YAML value), e.g. kosmos2=/models/kosmos-2")


def run(args) -> int:
    from vla_ros.commands.run import load_options
    from vla_ros.core.config import ConfigError
    from vla_ros.policies.cards import CardError
    from vla_ros.policies.inspect_checkpoint import format_report, inspect_checkpoint

    try:
        report = inspect_checkpoint(args.path, args.card, load_options(args))
    except (FileNotFoundError, ValueError, ConfigError, CardError, RuntimeError) as exc:
        print(f"vla-ros checkpoint inspect: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0 if not (report.missing or report.unexpected or report.shape_mismatch) else 3
