"""`vla-ros demo`: the closed loop in simulation over ROS 2 — the MuJoCo tabletop publishing what a Franka and
its RGB-D camera publish, the policy node (a checkpoint this project trained, bundled in the package) and the
executor with the Franka adapter, on loopback DDS. Runs N episodes, prints the success rate, mean episode time
and latency, and writes a report folder (report.json, plots, a GIF of the first episode, index.html)."""
from __future__ import annotations

import json
import os
import sys
import time

from vla_ros.dds import apply_dds_defaults

HELP = "closed-loop demo in simulation over ROS 2 (bundled checkpoints)"


def add_arguments(parser) -> None:
    from vla_ros.core.constants import METHODS, MODALITY_SETS
    from vla_ros.sim.tasks import TASKS

    parser.add_argument("--method", default="falcon", choices=METHODS,
                        help="which bundled checkpoint to run (default falcon)")
    parser.add_argument("--checkpoint", default="", help="a checkpoint folder instead of the bundled one")
    parser.add_argument("--modalities", default="rgbd_pose", choices=list(MODALITY_SETS),
                        help="inputs the policy may use")
    parser.add_argument("--task", default="all", choices=("all", *TASKS), help="task (default: all, in turn)")
    parser.add_argument("--episodes", type=int, default=6, help="number of episodes (tasks in turn)")
    parser.add_argument("--seed", type=int, default=0, help="first episode's seed (offset from the training seeds)")
    parser.add_argument("--max-time-s", type=float, default=15.0, help="simulated time limit per episode")
    parser.add_argument("--out", default="demo_report", help="report folder")
    parser.add_argument("--depth-encoding", default="16UC1", choices=("16UC1", "32FC1"))
    parser.add_argument("--no-gif", action="store_true", help="skip the episode GIF")


def run(args) -> int:
    apply_dds_defaults()  # loopback discovery, and the large-frame Fast DDS profile
    if args.episodes < 1:
        print("vla-ros demo: --episodes must be >= 1", file=sys.stderr)
        return 2
    from vla_ros.sim.checkpoints import bundled_checkpoint

    try:
        ckpt = args.checkpoint or bundled_checkpoint(args.method)
        if not os.path.isdir(ckpt):
            raise FileNotFoundError(f"checkpoint {ckpt}: no such folder")
    except FileNotFoundError as exc:
        print(f"vla-ros demo: {exc}", file=sys.stderr)
        return 1
    import rclpy

    from vla_ros.ros.nodes.sim_node import SimNodeConfig
    from vla_ros.ros.sim_demo import SimDemo
    from vla_ros.ros.spin import init_ros
    from vla_ros.sim.closed_loop import EVAL_SEED_OFFSET
    from vla_ros.sim.report import summarize, write_report
    from vla_ros.sim.tasks import TASKS

    tasks = list(TASKS) if args.task == "all" else [args.task]
    seed0 = EVAL_SEED_OFFSET + args.seed
    init_ros()
    demo = None
    try:
        demo = SimDemo(ckpt, args.modalities, sim=SimNodeConfig(seed=seed0, task=tasks[0],
                                                              depth_encoding=args.depth_encoding))
        if not demo.start():
            print(f"vla-ros demo: policy node failed to configure: {demo.stack.policy.last_error}", file=sys.stderr)
            return 1
        t0, results = time.monotonic(), []
        for k in range(args.episodes):
            r = demo.run_episode(seed0 + k, tasks[k % len(tasks)], args.max_time_s, record=k == 0 and not args.no_gif)
            results.append(r)
            print(f"episode {k + 1}/{args.episodes} {r.task}: {'success' if r.success else 'fail'} in "
                  f"{r.time_s:.1f} s  ({r.instruction!r})", flush=True)
        latency = [v for r in results for v in r.inference_ms]
        summary = summarize([r.summary() for r in results], latency)
        pc = demo.stack.policy.policy.config
        report = {"method": pc.method, "checkpoint": ckpt, "modalities": args.modalities, "tasks": tasks,
                  "summary": summary, "episodes": [r.summary() for r in results], "counters": demo.counters(),
                  "wall_s": time.monotonic() - t0, "transport": "ROS 2 topics on loopback DDS",
                  "latency": "observation stamp -> ActionChunk published (ms)"}
        page = write_report(args.out, report, latency, results[0].frames)
    finally:
        if demo is not None:
            demo.stop()
        rclpy.try_shutdown()
    lat = summary["latency_ms"] or {}
    print(json.dumps({"success_rate": summary["success_rate"], "successes": summary["successes"],
                      "episodes": summary["episodes"], "per_task": {t: v["success_rate"] for t, v in
                                                                  summary["per_task"].items()},
                      "mean_episode_time_s": summary["mean_episode_time_s"], "latency_ms_median": lat.get("median"),
                      "report": str(page)}, indent=1))
    return 0
