"""`vla-ros ablation --episodes N --out DIR`: the README's ablation table — every bundled sim checkpoint in
closed loop with the modalities of its row, on the same seeded episodes (success per task, 95% intervals)."""
from __future__ import annotations

import json

HELP = "closed-loop ablation of the bundled sim checkpoints (success per task with 95% intervals)"


def add_arguments(parser) -> None:
    parser.add_argument("--episodes", type=int, default=30, help="episodes per task and row")
    parser.add_argument("--out", default="ablation", help="folder for ablation.json and ablation.md")
    parser.add_argument("--checkpoints", default="", help="folder holding the sim_* checkpoints (default: bundled)")
    parser.add_argument("--rows", nargs="*", default=None, metavar="CHECKPOINT",
                        help="run only the rows of these checkpoint folders (e.g. sim_pi0); the others stay cached")
    parser.add_argument("--camera-shift", action="store_true",
                        help="also evaluate every row with the camera outside the training range (a second column)")


def run(args) -> int:
    from vla_ros.sim.ablation import ROOT, ROWS, run_ablation
    from vla_ros.sim.tasks import TASKS

    unknown = sorted(set(args.rows or ()) - {r.checkpoint for r in ROWS})
    if unknown:
        print(f"vla-ros ablation: --rows: unknown {unknown}; rows: {sorted({r.checkpoint for r in ROWS})}")
        return 2
    rows = [r for r in ROWS if r.checkpoint in args.rows] if args.rows else None
    cameras = ("tasks", "shifted") if args.camera_shift else ("tasks",)
    res = run_ablation(args.episodes, list(TASKS), args.out, args.checkpoints or ROOT, rows=rows, cameras=cameras)
    print(open(res["table"]).read())
    print(json.dumps({"table": res["table"], "json": f"{args.out}/ablation.json"}))
    return 0
