"""rosbag2 reading without a ROS install (the `rosbags` library): sqlite3 and MCAP, metadata v4 (Foxy) to
current, standard CDR types plus custom types from definitions stored in the bag or given as .msg files.

Bad input is named: a missing metadata.yaml, a truncated or corrupt file, an unknown type without a
definition (its topic is skipped with a message; the rest is read).
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class BagError(RuntimeError):
    """A bag cannot be read; the message names the file and why."""


@dataclass
class TopicInfo:
    topic: str
    msgtype: str
    count: int
    stamps_ns: list[int] = field(default_factory=list)
    readable: bool = True
    note: str = ""

    def summary(self) -> dict:
        s = np.asarray(self.stamps_ns, dtype=np.int64)
        gaps = np.diff(s) * 1e-9 if s.size > 1 else np.zeros(0)
        out = {"topic": self.topic, "type": self.msgtype, "count": self.count, "readable": self.readable}
        if gaps.size:
            out.update({"rate_hz": round(float(1.0 / np.median(gaps)), 3) if np.median(gaps) > 0 else None,
                        "max_gap_s": round(float(gaps.max()), 6), "median_gap_s": round(float(np.median(gaps)), 6)})
        if self.note:
            out["note"] = self.note
        return out


def _typestore(extra_msg_dirs: list[Path] | None = None):
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.LATEST)
    types = {}
    for d in extra_msg_dirs or []:
        for f in sorted(Path(d).rglob("*.msg")):
            pkg = f.parent.parent.name
            types.update(get_types_from_msg(f.read_text(), f"{pkg}/msg/{f.stem}"))
    if types:
        store.register(types)
    return store


class McapFile:
    """MCAP storage read with the `mcap` library (rosbag2's own MCAP files, with or without a rosbag2
    metadata record); exposes what Bag needs: connections, start/end, raw messages in log-time order."""

    def __init__(self, files: list[Path]):
        from mcap.reader import make_reader

        self.files = files
        self.connections, self._counts, self.start_time, self.end_time = [], {}, None, None
        for f in files:
            with open(f, "rb") as fh:
                summary = make_reader(fh).get_summary()
            if summary is None:
                raise BagError(f"{f}: MCAP file has no summary section (truncated?)")
            stats = summary.statistics
            for cid, ch in summary.channels.items():
                schema = summary.schemas.get(ch.schema_id)
                count = stats.channel_message_counts.get(cid, 0) if stats else 0
                self.connections.append(_Conn(ch.topic, schema.name if schema else "", count,
                                              schema.data.decode() if schema and schema.encoding == "ros2msg" else ""))
            if stats and stats.message_count:
                self.start_time = min(stats.message_start_time, self.start_time or stats.message_start_time)
                self.end_time = max(stats.message_end_time, self.end_time or 0)

    def messages(self, connections):
        from mcap.reader import make_reader

        wanted = {c.topic for c in connections}
        for f in self.files:
            with open(f, "rb") as fh:
                for schema, channel, msg in make_reader(fh).iter_messages(topics=list(wanted), log_time_order=True):
                    yield _Conn(channel.topic, schema.name if schema else "", 0, ""), msg.log_time, msg.data

    def close(self):
        pass


@dataclass
class _Conn:
    topic: str
    msgtype: str
    msgcount: int
    definition: str


class Bag:
    """Open with `Bag(path)`; iterate `messages(topics)` -> (topic, t_ns, msg). Use as a context manager."""

    def __init__(self, path: str | Path, msg_dirs: list[Path] | None = None):
        from rosbags.rosbag2 import Reader

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"{self.path}: no such bag")
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            raise BagError(f"{self.path}: missing metadata.yaml (not a rosbag2 folder, or it was not closed cleanly)")
        self._tmp = None
        self.reader = None
        self.store = _typestore(msg_dirs)
        mcaps = [self.path] if self.path.suffix == ".mcap" else sorted(self.path.glob("*.mcap"))
        try:
            if mcaps:
                self.reader = McapFile(mcaps)
            else:
                self.reader = Reader(self._readable_copy())
                self.reader.open()
        except BagError:
            raise
        except Exception as exc:
            self.close()
            raise BagError(f"{self.path}: cannot open bag ({type(exc).__name__}: {exc})") from None
        self.skipped: dict[str, str] = {}
        self._register_bag_types()

    def _readable_copy(self) -> Path:
        """sqlite3 bags in WAL mode write -shm/-wal files even when only read: read a private copy instead,
        so nothing is created beside the original (which may be read-only)."""
        if not self.path.is_dir() or not any(self.path.glob("*.db3")):
            return self.path
        self._tmp = Path(tempfile.mkdtemp(prefix="vla_bag_"))
        dst = self._tmp / self.path.name
        shutil.copytree(self.path, dst, ignore=shutil.ignore_patterns("*-shm", "*-wal"))
        for f in dst.rglob("*"):
            f.chmod(0o644)
        dst.chmod(0o755)
        return dst

    def _register_bag_types(self) -> None:
        from rosbags.typesys import get_types_from_msg

        for c in self.reader.connections:
            if c.msgtype in self.store.types:
                continue
            md = getattr(c, "msgdef", None)
            stored = md is not None and getattr(md.format, "name", "") == "MSG"
            text = getattr(c, "definition", "") or (md.data if stored else "")
            if text:
                try:
                    self.store.register(get_types_from_msg(text, c.msgtype))
                    continue
                except Exception as exc:  # a definition that does not parse is reported, not fatal
                    first = str(exc).strip().splitlines()[0][:120]
                    self.skipped[c.topic] = f"type {c.msgtype}: stored definition not usable ({first})"
                    continue
            self.skipped[c.topic] = f"type {c.msgtype}: no definition in the bag or in the given .msg folders"

    def close(self) -> None:
        if getattr(self, "reader", None) is not None:
            try:
                self.reader.close()
            except Exception:
                pass
            self.reader = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Bag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def start_ns(self) -> int:
        return int(self.reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self.reader.end_time)

    def topics(self) -> dict[str, TopicInfo]:
        out = {}
        for c in self.reader.connections:
            info = out.setdefault(c.topic, TopicInfo(c.topic, c.msgtype, 0))
            info.count += c.msgcount
            if c.topic in self.skipped:
                info.readable, info.note = False, self.skipped[c.topic]
        return out

    def raw(self, topics: list[str] | None = None) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, t_ns, CDR bytes) in time order; a truncated file ends with a BagError."""
        conns = [c for c in self.reader.connections if topics is None or c.topic in topics]
        try:
            for conn, t, data in self.reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, t, data
        except Exception as exc:
            raise BagError(f"{self.path}: read failed after some messages ({type(exc).__name__}: {exc}); the bag "
                           "is truncated or corrupt") from None

    def messages(self, topics: list[str] | None = None) -> Iterator[tuple[str, int, object]]:
        """(topic, t_ns, deserialized message); topics with unknown types are skipped (see `skipped`)."""
        wanted = [t for t in (topics or [c.topic for c in self.reader.connections]) if t not in self.skipped]
        for topic, msgtype, t, data in self.raw(wanted):
            yield topic, t, self.store.deserialize_cdr(data, msgtype)

    def stamps(self) -> dict[str, TopicInfo]:
        infos = self.topics()
        for topic, _, t, _ in self.raw():
            infos[topic].stamps_ns.append(t)
        return infos
