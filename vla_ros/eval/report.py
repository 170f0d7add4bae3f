"""The eval report: DIR/report.json, PNG plots (predicted vs recorded per action dimension over time, one figure
per arm; latency histogram) and index.html that shows them with the A/B table. matplotlib with the Agg backend."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from vla_ros.core.actions import poses_to_actions
from vla_ros.core.chunking import step_times
from vla_ros.eval.offline import DIMS, UNITS


def _recorded_vectors(actions, arm: int, ref_quat) -> tuple[np.ndarray, np.ndarray]:
    t, poses = actions.series(arm)
    grip = actions.gripper_at(t, actions.gripper_lead_s)  # as compared (a measured opening is read ahead)
    v = poses_to_actions(poses[:, :3], poses[:, 3:], np.zeros(len(t)) if grip is None else grip[:, arm], ref_quat)
    if grip is None:
        v[:, 6] = np.nan  # not recorded: nothing to draw
    return t, v


def plot_pred_vs_recorded(out: Path, report: dict, series: dict, plt) -> list[str]:
    """One PNG per arm: 7 rows (x, y, z, rx, ry, rz, gripper); the first step of each chunk per modality set and
    the recorded targets, against time since the bag's first frame."""
    ref = report["rotation_ref_quat_xyzw"]
    _, first_actions = next(iter(series.values()))
    t0 = min((c.stamp_s for run, _ in series.values() for c in run.chunks), default=0.0)
    names = []
    for a, arm in enumerate(first_actions.arms):
        fig, axes = plt.subplots(len(DIMS), 1, figsize=(10, 12), sharex=True)
        rt, rv = _recorded_vectors(first_actions, a, ref)
        for i, ax in enumerate(axes):
            ax.plot(rt - t0, rv[:, i], "k-", lw=1.2, label="recorded")
        for mods, (run, _) in series.items():
            if not run.chunks:
                continue
            t = np.array([step_times(c)[0] for c in run.chunks])
            v = poses_to_actions(np.stack([c.position_m[0, a] for c in run.chunks]),
                                 np.stack([c.quat_xyzw[0, a] for c in run.chunks]),
                                 np.array([c.gripper[0, a] for c in run.chunks]), ref)
            for i, ax in enumerate(axes):
                ax.plot(t - t0, v[:, i], ".-", ms=3, lw=0.8, label=f"predicted ({mods})")
        for i, ax in enumerate(axes):
            ax.set_ylabel(f"{DIMS[i]} ({UNITS[i]})" if UNITS[i] else DIMS[i])
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="upper right")
        axes[-1].set_xlabel("time since first frame (s)")
        fig.suptitle(f"arm {arm}: first chunk step vs recorded target (rotation relative to {ref})", fontsize=10)
        fig.tight_layout()
        name = f"pred_vs_recorded_{arm}.png"
        fig.savefig(out / name, dpi=80)
        plt.close(fig)
        names.append(name)
    return names


def plot_latency(out: Path, series: dict, plt) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for mods, (run, _) in series.items():
        ax.hist(1e3 * np.asarray(run.model_s), bins=30, alpha=0.6, label=mods)
    ax.set_xlabel("inference latency (ms)")
    ax.set_ylabel("chunks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency_hist.png", dpi=80)
    plt.close(fig)
    return "latency_hist.png"


def _num(v, fmt: str = "{:.4f}") -> str:
    return "-" if v is None else fmt.format(v)


def _table(report: dict) -> str:
    runs = report["runs"]
    mods = list(runs)
    rows = [("frames", lambda r: str(r["frames"])),
            ("eval frames/s", lambda r: _num(r["eval_fps"], "{:.1f}")),
            ("model frames/s", lambda r: _num(r["model_fps"], "{:.1f}")),
            ("latency median / p99 (ms)", lambda r: f"{r['latency_ms']['median']:.1f} / {r['latency_ms']['p99']:.1f}"),
            ("modalities used", lambda r: ", ".join(r["modalities_used"])),
            ("chunk self-consistency (m)", lambda r: _num(r["chunk_self_consistency"]["position_m"]))]
    arms = next(iter(runs.values()))["arms"]
    for arm in arms:
        for d in DIMS:
            rows.append((f"{arm} {d} MAE / RMSE", lambda r, arm=arm, d=d: (
                f"{r['arms'][arm]['per_dim'][d]['mae']:.4f} / {r['arms'][arm]['per_dim'][d]['rmse']:.4f}"
                if d in r["arms"][arm]["per_dim"] else "-")))
        rows.append((f"{arm} rotation angle MAE (rad)",
                     lambda r, arm=arm: f"{r['arms'][arm]['rotation_angle_rad']['mae']:.4f}"))
        rows.append((f"{arm} gripper accuracy", lambda r, arm=arm: _num(r["arms"][arm]["gripper_accuracy"], "{:.3f}")))
    head = "".join(f"<th>{html.escape(m)}</th>" for m in mods)
    body = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{html.escape(fn(runs[m]))}</td>" for m in mods)
                   + "</tr>" for name, fn in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def write_report(out: str | Path, report: dict, series: dict) -> Path:
    """Write report.json, the plots and index.html into `out`; returns the page's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    images = plot_pred_vs_recorded(out, report, series, plt) + [plot_latency(out, series, plt)]
    notes = sorted({p for r in report["runs"].values() for p in r.get("problems", [])})
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>vla_ros offline evaluation</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #aaa;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style>"
            "</head><body><h1>Offline evaluation</h1>"
            f"<p>bag <code>{html.escape(report['bag'])}</code><br>checkpoint <code>"
            f"{html.escape(report['checkpoint'])}</code> ({html.escape(report['method'])}), robot "
            f"{html.escape(report['robot'])}, horizon {report['horizon']} x {report['dt_s']} s</p>"
            + _table(report)
            + "".join(f"<p><b>warning:</b> {html.escape(n)}</p>" for n in notes)
            + "".join(f"<p><img src='{img}' alt='{img}'></p>" for img in images)
            + "<p>All numbers: <a href='report.json'>report.json</a></p></body></html>")
    (out / "index.html").write_text(page)
    return out / "index.html"
