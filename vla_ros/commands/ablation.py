"""`vla-ros ablation --episodes N --out DIR`: the README's ablation table — every bundled sim checkpoint in
closed loop with the modalities of its row, on the same seeded episodes (success per task, 95% intervals)."""
from __future__ import annotations

import json

HELP = "closed-loop ablation of the bundled sim checkpoints (success per task with 95% intervals)"


def add_arguments(parser) -> None:
    parser.add_argument("--episodes", type=int, default=30, help="episodes per task and row")
    parser.add_argument("--out", default="ablation", help="folder for ablation.json and ablation.md")
    parser.add_argument("--checkpoints", default="", help="folder holding the sim_* checkpoints (default: bundled)")


def run(args) -> int:
    from vla_ros.sim.ablation import ROOT, run_ablation
    from vla_ros.sim.tasks import TASKS

    res = run_ablation(args.episodes, list(TASKS), args.out, args.checkpoints or ROOT)
    print(open(res["table"]).read())
    print(json.dumps({"table": res["table"], "json": f"{args.out}/ablation.json"}))
    return 0
