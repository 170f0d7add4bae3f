"""Cross-process camera transport: RGB-D frames at 30 Hz from a separate publisher process (as a camera driver on
a robot PC), with vla_ros's Fast DDS profile and with Fast DDS's defaults: share delivered and latency."""
from __future__ import annotations

from vla_ros.bench.stats import figure, scalar


def run(device: str = "cpu", quick: bool = False) -> dict:
    import rclpy
    from rclpy.context import Context

    from vla_ros.ros.delivery_probe import cross_process

    seconds = 3.0 if quick else 8.0
    out = {}
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        for (h, w) in ((480, 640), (720, 1280)):
            for profile, tag in ((True, "profile"), (False, "fastdds_default")):
                report = cross_process(h, w, seconds, profile=profile, context=ctx)
                for stream in ("rgb", "depth"):
                    r = report.get(stream, {"received": 0, "published": 0, "fraction": 0.0, "latencies_s": []})
                    key = f"{w}x{h}_{stream}_{tag}"
                    out[f"{key}_delivered_pct"] = scalar(100 * r["fraction"], "%", received=r["received"],
                                                         published=r["published"])
                    if r["latencies_s"]:
                        out[f"{key}_latency_ms"] = figure(r["latencies_s"], "ms", 1e3)
    finally:
        rclpy.try_shutdown(context=ctx)
    return out
