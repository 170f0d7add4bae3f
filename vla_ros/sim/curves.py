"""Training curves of the bundled sim checkpoints: validation action loss (the same quantity for every method:
the alignment term of Spatial Forcing excluded) against training steps, from each checkpoint's metrics.jsonl.

`python -m vla_ros.sim.curves --out docs/ablation` writes curves.png and curves.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_ros.sim.checkpoints import ROOT

# SpatialVLA is left out: its action loss is a token cross-entropy, not the others' regression loss
DEFAULT = ("sim_baseline", "sim_spatial_forcing", "sim_falcon", "sim_falcon_rgb")


def read_curve(metrics_file: Path, key: str = "val_action_loss") -> tuple[list[int], list[float]]:
    steps, values = [], []
    for line in Path(metrics_file).read_text().splitlines():
        row = json.loads(line)
        if key in row:
            steps.append(int(row["step"]))
            values.append(float(row[key]))
    return steps, values


def plot_curves(out_dir: str | Path, names=DEFAULT, root: Path = ROOT) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = {}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in names:
        f = Path(root) / name / "metrics.jsonl"
        if not f.is_file():
            continue
        steps, vals = read_curve(f)
        curves[name] = {"step": steps, "val_action_loss": vals}
        ax.plot(steps, vals, marker=".", label=name.removeprefix("sim_"))
    ax.set_xlabel("training step")
    ax.set_ylabel("validation action loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=90)
    plt.close(fig)
    (out / "curves.json").write_text(json.dumps(curves, indent=1))
    return curves


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/ablation")
    args = ap.parse_args(argv)
    curves = plot_curves(args.out)
    print(json.dumps({k: v["val_action_loss"][-1] if v["val_action_loss"] else None for k, v in curves.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
