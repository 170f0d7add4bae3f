"""`vla-ros eval-bag BAG --config ROBOT --checkpoint CKPT --out DIR [--modalities rgb,rgbd]`: replay the bag's
observations through the policy, compare with the actions recorded in the bag, write report.json, plots and
index.html. With several modality sets it evaluates the same checkpoint on each, side by side (A/B)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HELP = "offline evaluation of a checkpoint on a rosbag2 (metrics, plots, A/B over modalities)"


def add_arguments(parser) -> None:
    parser.add_argument("bag", help="rosbag2 folder (sqlite3 or MCAP) or a .mcap file")
    parser.add_argument("--config", required=True, help="robot config (name or YAML)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder")
    parser.add_argument("--out", required=True, help="report folder (report.json, PNG plots, index.html)")
    parser.add_argument("--modalities", default="rgbd_pose",
                        help="comma-separated modality sets evaluated side by side, e.g. rgb,rgbd")
    parser.add_argument("--actions", default="auto", choices=("auto", "command", "executor"),
                        help="recorded actions to compare with: the robot's command topics or the executor's "
                             "commanded poses (auto: commands if recorded)")
    parser.add_argument("--stride", type=int, default=1, help="evaluate every N-th frame")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0 = all)")
    parser.add_argument("--msg-dir", action="append", default=[], help="folder of <pkg>/msg/*.msg custom types")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from vla_ros.core.config import ConfigError
    from vla_ros.data.bags import BagError
    from vla_ros.eval.offline import EvalError, evaluate
    from vla_ros.eval.report import write_report
    from vla_ros.runtime_config import load_runtime_config

    mods = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if args.stride < 1 or args.max_frames < 0:
        print("vla-ros eval-bag: --stride must be >= 1 and --max-frames >= 0", file=sys.stderr)
        return 2
    try:
        cfg = load_runtime_config(args.config)
        report, series = evaluate(args.bag, cfg, args.checkpoint, mods, args.device, not args.no_progress,
                                  args.actions, [Path(d) for d in args.msg_dir], args.stride, args.max_frames)
        page = write_report(Path(args.out), report, series)
    except (ConfigError, EvalError, BagError, OSError) as exc:
        print(f"vla-ros eval-bag: {exc}", file=sys.stderr)
        return 1
    warnings = {p for r in report["runs"].values() for p in r["problems"]}  # the same bag is read once per run
    warnings |= {f"recorded actions: skipped {k} x{n}" for r in report["runs"].values()
                 for k, n in r["skipped_actions"].items()}
    for p in sorted(warnings):
        print(f"vla-ros eval-bag: warning: {p}", file=sys.stderr)
    runs = {m: {k: r[k] for k in ("frames", "eval_fps", "model_fps")} for m, r in report["runs"].items()}
    print(json.dumps({"report": str(Path(args.out) / "report.json"), "page": str(page), "runs": runs}))
    return 0
