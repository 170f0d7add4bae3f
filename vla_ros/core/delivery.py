"""How many of the messages a publisher sent actually arrived, from the publisher's sequence numbers.

DDS gives every sample its publisher's sequence number (rclpy's MessageInfo `publication_sequence_number`), so a
subscriber can tell "the camera publishes at 30 Hz but I get 1 Hz" from "the camera publishes at 1 Hz". Pure:
fed by the ROS shell (observation frontend, `vla-ros doctor`, the bench), time comes in as an argument.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.dds import export_line

FASTDDS_DEFAULT_SHM_SEGMENT_BYTES = 512 * 1024


@dataclass
class _Stream:
    first_seq: int
    last_seq: int
    received: int = 0
    size_bytes: int = 0
    latencies_s: list[float] = field(default_factory=list)


class DeliveryMonitor:
    """Per source and publisher: received / published over a window of `window` published messages."""

    def __init__(self, window: int = 300, min_published: int = 30, min_fraction: float = 0.9):
        self.window, self.min_published, self.min_fraction = window, min_published, min_fraction
        self._streams: dict[tuple[str, bytes], _Stream] = {}

    def add(self, source: str, publisher_gid: bytes, seq: int | None, size_bytes: int,
            latency_s: float | None = None) -> None:
        if seq is None:  # the RMW does not report sequence numbers: nothing to compare against
            return
        key = (source, publisher_gid)
        s = self._streams.get(key)
        if s is None or seq < s.last_seq or seq - s.first_seq >= self.window:  # new publisher/restart/next window
            s = self._streams[key] = _Stream(first_seq=seq, last_seq=seq)
        s.last_seq, s.received, s.size_bytes = seq, s.received + 1, size_bytes
        if latency_s is not None:
            s.latencies_s.append(latency_s)

    def report(self) -> dict[str, dict]:
        """source -> received, published, fraction, size_bytes (summed over its publishers' current windows)."""
        out: dict[str, dict] = {}
        for (source, _), s in self._streams.items():
            r = out.setdefault(source, {"received": 0, "published": 0, "size_bytes": 0, "latencies_s": []})
            r["received"] += s.received
            r["published"] += s.last_seq - s.first_seq + 1
            r["size_bytes"] = max(r["size_bytes"], s.size_bytes)
            r["latencies_s"] += s.latencies_s
        for r in out.values():
            r["fraction"] = r["received"] / max(r["published"], 1)
        return out

    def warnings(self) -> list[str]:
        """A line per source that gets less than `min_fraction` of what its publisher sent, with the likely cause."""
        lines = []
        for source, r in self.report().items():
            if r["published"] < self.min_published or r["fraction"] >= self.min_fraction:
                continue
            lines.append(f"{source}: {r['received']} of {r['published']} published messages arrived "
                         f"({100 * r['fraction']:.0f}%). " + likely_cause(r["size_bytes"]))
        return lines


def likely_cause(size_bytes: int) -> str:
    if size_bytes > FASTDDS_DEFAULT_SHM_SEGMENT_BYTES // 2:
        return (f"Likely cause: a message is {size_bytes / 1024:.0f} KiB and the publisher's Fast DDS shared-memory "
                f"segment ({FASTDDS_DEFAULT_SHM_SEGMENT_BYTES // 1024} KiB by default) cannot hold it, so frames go as "
                f"UDP fragments and are lost. Start the publisher (camera driver) with `{export_line()}`.")
    return ("Likely cause: the subscriber cannot keep up (CPU load, a slow callback) or the network drops "
            "best-effort samples; check the CPU and the QoS depth.")
