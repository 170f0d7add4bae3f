"""Training curves of the bundled sim checkpoints: validation action loss (the same quantity for every method:
the alignment term of Spatial Forcing excluded) against training steps, from each checkpoint's metrics.jsonl.

`python -m vla_ros.sim.curves --out docs/ablation` writes curves.png and curves.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_ros.sim.checkpoints import ROOT

# One panel per comparable loss: the regression heads; pi0's flow-matching loss. SpatialVLA is left out: its
# action loss is a token cross-entropy.
PANELS = {"regression head (val action loss)": ("sim_baseline", "sim_spatial_forcing", "sim_falcon", "sim_falcon_rgb"),
          "pi0 (val flow-matching loss)": ("sim_pi0", "sim_pi0_sf")}
SF_PAIRS = (("sim_baseline", "sim_spatial_forcing"), ("sim_pi0", "sim_pi0_sf"))  # (without, with) Spatial Forcing


def convergence(plain: dict, forced: dict) -> dict | None:
    """Steps the Spatial Forcing run needs to reach the plain run's final validation loss, and the speed-up
    (the plain run's steps over those); None when it never reaches it."""
    target, last = plain["val_action_loss"][-1], plain["step"][-1]
    for step, v in zip(forced["step"], forced["val_action_loss"]):
        if v <= target:
            return {"plain_final_loss": target, "plain_steps": last, "forced_steps": step, "speedup": last / step}
    return {"plain_final_loss": target, "plain_steps": last, "forced_steps": None, "speedup": None}


def read_curve(metrics_file: Path, key: str = "val_action_loss") -> tuple[list[int], list[float]]:
    steps, values = [], []
    for line in Path(metrics_file).read_text().splitlines():
        row = json.loads(line)
        if key in row:
            steps.append(int(row["step"]))
            values.append(float(row[key]))
    return steps, values


def plot_curves(out_dir: str | Path, panels=None, root: Path = ROOT) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    panels = panels or PANELS
    curves = {}
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (title, names) in zip(axes[0], panels.items()):
        for name in names:
            f = Path(root) / name / "metrics.jsonl"
            if not f.is_file():
                continue
            steps, vals = read_curve(f)
            curves[name] = {"step": steps, "val_action_loss": vals}
            ax.plot(steps, vals, marker=".", label=name.removeprefix("sim_"))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training step (stage 1)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=90)
    plt.close(fig)
    speed = {f"{a} -> {b}": convergence(curves[a], curves[b]) for a, b in SF_PAIRS
             if curves.get(a, {}).get("step") and curves.get(b, {}).get("step")}
    (out / "curves.json").write_text(json.dumps({"curves": curves, "convergence": speed}, indent=1))
    return {"curves": curves, "convergence": speed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/ablation")
    args = ap.parse_args(argv)
    res = plot_curves(args.out)
    print(json.dumps({"final": {k: v["val_action_loss"][-1] if v["val_action_loss"] else None
                                for k, v in res["curves"].items()}, "convergence": res["convergence"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
