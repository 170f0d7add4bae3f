"""Figures: median and p99 of repeated measurements, with units."""
from __future__ import annotations

import time

import numpy as np


def figure(samples, unit: str, scale: float = 1.0, **extra) -> dict:
    a = np.asarray(samples, dtype=float) * scale
    return {"value": round(float(np.median(a)), 4), "p99": round(float(np.percentile(a, 99)), 4), "unit": unit,
            "n": int(a.size), **extra}


def scalar(value: float, unit: str, **extra) -> dict:
    return {"value": round(float(value), 4), "unit": unit, **extra}


def time_it(fn, repeats: int, warmup: int = 3, gap_s: float = 0.0) -> list[float]:
    """Times of `repeats` calls after `warmup`; `gap_s` idles between calls, as a node calling at a rate does (a
    call after an idle gap finds colder caches and is slower than back to back)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if gap_s:
            time.sleep(gap_s)
    return out


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
