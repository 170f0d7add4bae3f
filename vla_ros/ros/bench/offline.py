"""Offline eval throughput: frames/s of `eval-bag` (bag read + conversion + assembly + inference) against the
model alone on the same frames."""
from __future__ import annotations

import tempfile
from pathlib import Path

from vla_ros.bench.stats import scalar


def run(device: str = "cpu", quick: bool = False) -> dict:
    from vla_ros.data.bag_writer import write_robot_bag
    from vla_ros.eval.offline import evaluate
    from vla_ros.ros.synthetic_robot import tiny_checkpoint
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config("franka")
    tmp = Path(tempfile.mkdtemp(prefix="vla_bench_offline_"))
    bag = write_robot_bag(tmp / "bag", cfg, seconds=3.0 if quick else 10.0, size=(480, 640))
    out = {}
    for method in ("baseline", "falcon"):
        report, _ = evaluate(str(bag), cfg, tiny_checkpoint(tmp, cfg, method), ["rgbd"], device, progress=False)
        r = report["runs"]["rgbd"]
        out[f"{method}.eval_fps"] = scalar(r["eval_fps"], "frames/s", frames=r["frames"], image="640x480 RGB-D")
        out[f"{method}.model_only_fps"] = scalar(r["model_fps"], "frames/s")
        out[f"{method}.eval_over_model"] = scalar(r["eval_fps"] / r["model_fps"], "ratio")
    return out
