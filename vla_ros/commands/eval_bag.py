"""`vla-ros eval-bag BAG --config ROBOT --checkpoint CKPT --out DIR [--modalities rgb,rgbd]`: replay the bag's
observations through the policy, compare with the recorded commands, write report.json, plots and index.html.
With several modality sets it evaluates the same checkpoint on each, side by side (A/B)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HELP = "offline evaluation of a checkpoint on a rosbag2"


def add_arguments(parser) -> None:
    parser.add_argument("bag")
    parser.add_argument("--config", required=True, help="robot config (name or YAML)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--modalities", default="rgbd_pose", help="comma-separated: rgb,rgbd,rgbd_pose")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from vla_ros.core.config import ConfigError
    from vla_ros.core.constants import MODALITY_SETS
    from vla_ros.eval.offline import EvalError, evaluate
    from vla_ros.eval.report import write_report
    from vla_ros.runtime_config import load_runtime_config

    mods = [m.strip() for m in args.modalities.split(",") if m.strip()]
    bad = [m for m in mods if m not in MODALITY_SETS]
    if bad:
        print(f"vla-ros eval-bag: --modalities: unknown {bad}; choose from {list(MODALITY_SETS)}", file=sys.stderr)
        return 2
    try:
        cfg = load_runtime_config(args.config)
        report, series = evaluate(args.bag, cfg, args.checkpoint, mods, args.device, not args.no_progress)
    except (ConfigError, EvalError) as exc:
        print(f"vla-ros eval-bag: {exc}", file=sys.stderr)
        return 1
    page = write_report(Path(args.out), report, series)
    runs = {m: {k: r[k] for k in ("frames", "eval_fps", "model_fps")} for m, r in report["runs"].items()}
    print(json.dumps({"report": str(Path(args.out) / "report.json"), "page": str(page), **runs}))
    return 0
