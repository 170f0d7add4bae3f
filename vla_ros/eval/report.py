"""The eval report: DIR/report.json, PNG plots (predicted vs recorded per dimension; latency histogram) and a
short index.html that shows them."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np


def write_report(out: Path, report: dict, series: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vla_ros.core.chunking import step_times

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    images = []
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for mods, (run, _) in series.items():
        t = np.array([step_times(c)[0] for c in run.chunks])
        p = np.stack([c.position_m[0, 0] for c in run.chunks]) if run.chunks else np.zeros((0, 3))
        for i, ax in enumerate(axes):
            ax.plot(t, p[:, i] if len(p) else [], ".-", label=f"predicted ({mods})", ms=3)
    if series:
        commands = next(iter(series.values()))[1]
        if commands:
            ct = np.array([c[0] for c in commands])
            cp = np.stack([c[1] for c in commands])
            for i, ax in enumerate(axes):
                ax.plot(ct, cp[:, i], "k-", lw=1, label="recorded command")
    for i, ax in enumerate(axes):
        ax.set_ylabel(f"{'xyz'[i]} (m)")
        ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle("first step of each chunk vs recorded commands")
    fig.tight_layout()
    fig.savefig(out / "pred_vs_recorded.png", dpi=90)
    plt.close(fig)
    images.append("pred_vs_recorded.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for mods, (run, _) in series.items():
        ax.hist(1e3 * np.asarray(run.model_s), bins=30, alpha=0.6, label=mods)
    ax.set_xlabel("inference latency (ms)")
    ax.set_ylabel("chunks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency_hist.png", dpi=90)
    plt.close(fig)
    images.append("latency_hist.png")
    rows = "".join(f"<tr><td>{html.escape(m)}</td><td>{r['frames']}</td><td>{_fmt(r, 'per_dim')}</td>"
                   f"<td>{r['latency_ms_median']:.1f}</td><td>{_num(r.get('chunk_self_consistency_m'))}</td></tr>"
                   for m, r in report["runs"].items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>vla_ros eval</title></head><body>"
            f"<h1>Offline evaluation</h1><p>bag {html.escape(report['bag'])}<br>checkpoint "
            f"{html.escape(report['checkpoint'])} ({html.escape(report['method'])})</p>"
            f"<table border=1 cellpadding=4><tr><th>modalities</th><th>frames</th><th>position MAE x/y/z (m)</th>"
            f"<th>latency median (ms)</th><th>chunk self-consistency (m)</th></tr>{rows}</table>"
            + "".join(f"<p><img src='{img}' alt='{img}'></p>" for img in images)
            + "<p>Full numbers: <a href='report.json'>report.json</a></p></body></html>")
    (out / "index.html").write_text(page)
    return out / "index.html"


def _num(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _fmt(r: dict, key: str) -> str:
    d = r.get(key)
    return "-" if not d else " / ".join(f"{d[a]['mae_m']:.3f}" for a in "xyz")
