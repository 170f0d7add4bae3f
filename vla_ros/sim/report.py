"""The closed-loop report: DIR/report.json, success per task with its 95% interval and the inference latency as
PNG plots, an animated GIF of one episode seen from the camera, and index.html showing them. matplotlib (Agg)
and imageio; no ROS."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from vla_ros.sim.closed_loop import wilson_interval


def summarize(episodes: list[dict], latency_ms: list[float]) -> dict:
    """Success per task and overall (count, rate, 95% Wilson interval), mean episode time, latency figures."""
    per_task = {}
    for task in sorted({e["task"] for e in episodes}):
        rows = [e for e in episodes if e["task"] == task]
        wins = sum(e["success"] for e in rows)
        per_task[task] = {"successes": wins, "episodes": len(rows), "success_rate": wins / len(rows),
                          "ci95": list(wilson_interval(wins, len(rows)))}
    wins = sum(e["success"] for e in episodes)
    lat = np.asarray(latency_ms, float)
    return {
        "episodes": len(episodes), "successes": wins, "success_rate": wins / len(episodes) if episodes else 0.0,
        "ci95": list(wilson_interval(wins, len(episodes))), "per_task": per_task,
        "mean_episode_time_s": float(np.mean([e["time_s"] for e in episodes])) if episodes else None,
        "mean_success_time_s": (float(np.mean([e["time_s"] for e in episodes if e["success"]])) if wins else None),
        "latency_ms": ({"median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)),
                        "max": float(lat.max()), "samples": int(lat.size)} if lat.size else None),
    }


def write_gif(path: Path, frames: list[np.ndarray], fps: float = 10.0, scale: int = 3) -> Path | None:
    if not frames:
        return None
    import imageio.v2 as imageio

    big = [np.repeat(np.repeat(f, scale, 0), scale, 1) for f in frames]
    imageio.mimsave(path, big, duration=1.0 / fps, loop=0)
    return path


def write_report(out_dir: str | Path, report: dict, latency_ms: list[float], frames: list[np.ndarray] | None = None,
                 fps: float = 10.0) -> Path:
    """Writes report.json, success.png, latency.png, episode.gif (when frames) and index.html; returns the page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    s = report["summary"]
    tasks = list(s["per_task"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    rates = [s["per_task"][t]["success_rate"] for t in tasks]
    lo = [r - s["per_task"][t]["ci95"][0] for r, t in zip(rates, tasks)]
    hi = [s["per_task"][t]["ci95"][1] - r for r, t in zip(rates, tasks)]
    ax.bar(tasks, rates, yerr=[lo, hi], capsize=4, color="#4c72b0")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% CI)")
    ax.set_title(f"{report.get('method', '')} {report.get('modalities', '')}: "
                 f"{s['successes']}/{s['episodes']} episodes", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "success.png", dpi=80)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3))
    if latency_ms:
        ax.hist(latency_ms, bins=30, color="#55a868")
    ax.set_xlabel("observation stamp -> action chunk (ms)")
    ax.set_ylabel("chunks")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=80)
    plt.close(fig)
    gif = write_gif(out / "episode.gif", frames or [], fps)
    rows = "".join(f"<tr><td>{html.escape(t)}</td><td>{v['successes']}/{v['episodes']}</td>"
                   f"<td>{v['success_rate']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]</td></tr>"
                   for t, v in s["per_task"].items())
    eps = "".join(f"<tr><td>{e['seed']}</td><td>{html.escape(e['task'])}</td><td>{html.escape(e['instruction'])}"
                  f"</td><td>{'yes' if e['success'] else 'no'}</td><td>{e['time_s']:.1f}</td></tr>"
                  for e in report["episodes"])
    lat = s["latency_ms"] or {}
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>vla_ros demo</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{padding:2px 10px}}</style></head><body>
<h1>vla_ros closed-loop demo</h1>
<p>{html.escape(str(report.get('method', '')))} checkpoint <code>{html.escape(str(report.get('checkpoint', '')))}
</code>, modalities {html.escape(str(report.get('modalities', '')))}. Success {s['successes']}/{s['episodes']}
({s['success_rate']:.2f}), mean episode time {s['mean_episode_time_s'] or 0:.1f} s, latency median
{lat.get('median', float('nan')):.0f} ms.</p>
<table><tr><th>task</th><th>successes</th><th>rate [95% CI]</th></tr>{rows}</table>
<p><img src="success.png"> <img src="latency.png"></p>
{'<p><img src="episode.gif" alt="one episode from the camera"></p>' if gif else ''}
<table><tr><th>seed</th><th>task</th><th>instruction</th><th>success</th><th>time (s)</th></tr>{eps}</table>
</body></html>"""
    (out / "index.html").write_text(page)
    return out / "index.html"
