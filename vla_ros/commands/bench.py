"""`vla-ros bench [--json] [--device cpu|cuda] [--quick] [--only AREA ...]`.

Runs each area's benchmark (`vla_ros/bench/<area>.py`, or `vla_ros/ros/bench/<area>.py` for the areas that use
ROS; `run(device, quick) -> {name: figure}`) in this process and prints one JSON object: machine description
plus named figures (value + unit, median/p99).
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import sys
import time

from vla_ros.dds import apply_dds_defaults

HELP = "measure the pipeline on this machine and print JSON"
AREAS = ("observation", "transport", "policy", "endtoend", "executor", "offline", "remote")
ROS_AREAS = ("observation", "transport", "endtoend", "executor", "offline")  # in vla_ros/ros/bench/


def area_module(area: str) -> str:
    """The module that benchmarks `area` (the core never imports rclpy, so the ROS areas live under ros/)."""
    return f"vla_ros.ros.bench.{area}" if area in ROS_AREAS else f"vla_ros.bench.{area}"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI smoke)")
    parser.add_argument("--only", nargs="+", choices=AREAS, help="run only these areas")
    parser.add_argument("--out", help="also write the JSON object to this file")


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            info["cpu_model"] = names[0]
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def run(args) -> int:
    apply_dds_defaults()  # loopback discovery, and the large-frame Fast DDS profile
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("vla-ros bench: --device cuda asked for, but torch sees no CUDA device", file=sys.stderr)
            return 2
    report = {"machine": machine(), "device": args.device, "quick": bool(args.quick), "figures": {}, "errors": {}}
    for area in args.only or AREAS:
        t0 = time.perf_counter()
        if not args.json:
            print(f"[bench] {area} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(area_module(area))
            figures = module.run(device=args.device, quick=args.quick)
        except Exception as exc:  # one area failing must not hide the others' figures
            report["errors"][area] = f"{type(exc).__name__}: {exc}"
            continue
        for name, fig in figures.items():
            report["figures"][f"{area}.{name}"] = fig
        report.setdefault("seconds", {})[area] = round(time.perf_counter() - t0, 1)
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    text = json.dumps(report, indent=None if args.json else 2, sort_keys=False)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 1 if report["errors"] else 0
