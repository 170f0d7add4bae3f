"""rosbag2 reading without a ROS install: sqlite3 (the `rosbags` library) and MCAP (the `mcap` library, which also
reads rosbag2's MCAP files that carry no rosbag2 metadata record), metadata versions 4 (Foxy) to current.

Types: the standard packages (rosbags' typestore), plus custom types from definitions stored in the bag (sqlite3
schema 4, MCAP schemas) or given as `<pkg>/msg/*.msg` folders. A topic whose type has no usable definition is
skipped with the reason in `Bag.skipped`; everything else is read.

Nothing is written beside the bag: sqlite3 files are opened immutable (WAL-mode bags otherwise grow -shm/-wal
files even when only read). A bag left with a non-empty -wal file (not closed cleanly) is read from a private
copy, so the messages still in the WAL are included.

Damage: a missing metadata.yaml or an unreadable file raises BagError naming the file. A truncated file is read
up to the damage; the rest is reported in `Bag.problems` and, with `strict=True` (the default), `raw()` ends
with a BagError after the readable messages.
"""
from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class BagError(RuntimeError):
    """A bag cannot be read (or is damaged); the message names the file and why."""


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
        if s.size:
            out.update({"first_ns": int(s[0]), "last_ns": int(s[-1])})
        if gaps.size:
            med = float(np.median(gaps))
            out.update({"rate_hz": round(1.0 / med, 3) if med > 0 else None,
                        "mean_rate_hz": round((s.size - 1) / ((s[-1] - s[0]) * 1e-9), 3) if s[-1] > s[0] else None,
                        "median_gap_s": round(med, 6), "max_gap_s": round(float(gaps.max()), 6),
                        "gaps_over_3x_median": int(np.sum(gaps > 3 * med)) if med > 0 else 0})
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Connection:
    topic: str
    msgtype: str
    count: int
    definition: str = ""  # stored message definition text ("" = none)
    definition_format: str = ""  # "msg" | "idl" | ""


def typestore(msg_dirs: list[Path] | None = None):
    """rosbags' typestore of the current ROS distro plus the `<pkg>/msg/*.msg` files under each folder."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.LATEST)
    types = {}
    for d in msg_dirs or []:
        d = Path(d)
        if not d.is_dir():
            raise BagError(f"{d}: message definition folder not found")
        for f in sorted(d.rglob("*.msg")):
            try:
                types.update(get_types_from_msg(f.read_text(), f"{f.parent.parent.name}/msg/{f.stem}"))
            except Exception as exc:
                raise BagError(f"{f}: cannot parse message definition ({_first_line(exc)})") from None
    if types:
        store.register(types)
    return store


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


class _McapStorage:
    """rosbag2 MCAP files. With a summary section: indexed, in log-time order. Without one (truncated, or
    written without): scanned linearly up to the first damaged record; the rest goes to `problems`."""

    def __init__(self, files: list[Path]):
        from mcap.reader import make_reader

        self.files, self.problems = files, []
        self.start_time, self.end_time = None, None
        self._scan_limit: dict[Path, int] = {}  # file -> readable message count when it has no usable summary
        conns: dict[str, Connection] = {}
        for f in files:
            summary = None
            try:
                with open(f, "rb") as fh:
                    summary = make_reader(fh).get_summary()
            except Exception as exc:
                self.problems.append(f"{f}: no readable summary section ({_first_line(exc)}); scanning the file")
            if summary is None or summary.statistics is None:
                if not any(p.startswith(f"{f}:") for p in self.problems):
                    self.problems.append(f"{f}: no summary section (truncated or not closed cleanly); scanning it")
                self._scan(f, conns)
                continue
            stats = summary.statistics
            for cid, ch in summary.channels.items():
                schema = summary.schemas.get(ch.schema_id)
                self._add(conns, ch.topic, schema, stats.channel_message_counts.get(cid, 0))
            if stats.message_count:
                self._span(stats.message_start_time, stats.message_end_time)
        self.connections = list(conns.values())

    def _add(self, conns: dict, topic: str, schema, count: int) -> None:
        name = schema.name if schema is not None else ""
        c = conns.setdefault(topic, Connection(topic, name, 0))
        c.count += count
        if schema is not None and schema.data and not c.definition:
            fmt = {"ros2msg": "msg", "ros2idl": "idl"}.get(schema.encoding, "")
            if fmt:
                c.definition, c.definition_format = schema.data.decode(errors="replace"), fmt

    def _span(self, t0: int, t1: int) -> None:
        self.start_time = t0 if self.start_time is None else min(self.start_time, t0)
        self.end_time = t1 if self.end_time is None else max(self.end_time, t1)

    def _scan(self, f: Path, conns: dict) -> None:
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader

        schemas, channels, n = {}, {}, 0
        with open(f, "rb") as fh:
            try:
                for rec in StreamReader(fh, skip_magic=False).records:
                    if isinstance(rec, Schema):
                        schemas[rec.id] = rec
                    elif isinstance(rec, Channel):
                        channels[rec.id] = rec
                        self._add(conns, rec.topic, schemas.get(rec.schema_id), 0)
                    elif isinstance(rec, Message) and rec.channel_id in channels:
                        conns[channels[rec.channel_id].topic].count += 1
                        self._span(rec.log_time, rec.log_time)
                        n += 1
            except Exception as exc:
                self.problems.append(f"{f}: damaged after {n} readable messages ({_first_line(exc)}); the rest of "
                                     "the file is skipped")
        self._scan_limit[f] = n

    def messages(self, topics: set[str]) -> Iterator[tuple[str, int, bytes]]:
        from mcap.reader import make_reader
        from mcap.records import Channel, Message
        from mcap.stream_reader import StreamReader

        for f in self.files:
            with open(f, "rb") as fh:
                if f not in self._scan_limit:
                    for _, channel, msg in make_reader(fh).iter_messages(topics=list(topics), log_time_order=True):
                        yield channel.topic, msg.log_time, msg.data
                    continue
                channels, left = {}, self._scan_limit[f]
                for rec in StreamReader(fh, skip_magic=False).records:
                    if isinstance(rec, Channel):
                        channels[rec.id] = rec.topic
                    elif isinstance(rec, Message) and rec.channel_id in channels:
                        if channels[rec.channel_id] in topics:
                            yield channels[rec.channel_id], rec.log_time, rec.data
                        left -= 1
                        if left <= 0:
                            break
            if f in self._scan_limit and any(p.startswith(f"{f}: damaged") for p in self.problems):
                raise BagError(next(p for p in self.problems if p.startswith(f"{f}: damaged")))

    def close(self) -> None:
        pass


class _SqliteStorage:
    """rosbag2 sqlite3 bags through rosbags' Reader (opened immutable: nothing is written beside the bag)."""

    def __init__(self, path: Path):
        from rosbags.rosbag2 import Reader

        self.problems: list[str] = []
        self._tmp = None
        wal = [p for p in path.glob("*.db3-wal") if p.stat().st_size > 0]
        if wal:
            path = self._private_copy(path, wal)
        self.reader = Reader(path)
        self.reader.open()
        conns: dict[str, Connection] = {}
        for c in self.reader.connections:
            md = getattr(c, "msgdef", None)
            fmt = getattr(getattr(md, "format", None), "name", "")
            out = conns.setdefault(c.topic, Connection(c.topic, c.msgtype, 0))
            out.count += c.msgcount
            if md is not None and fmt in ("MSG", "IDL") and md.data and not out.definition:
                out.definition, out.definition_format = md.data, fmt.lower()
        self.connections = list(conns.values())
        self._by_topic = {}
        for c in self.reader.connections:
            self._by_topic.setdefault(c.topic, []).append(c)
        empty = self.reader.message_count == 0
        self.start_time = None if empty else self.reader.start_time
        self.end_time = None if empty else self.reader.end_time

    def _private_copy(self, path: Path, wal: list[Path]) -> Path:
        self._tmp = Path(tempfile.mkdtemp(prefix="vla_bag_"))
        dst = self._tmp / path.name
        shutil.copytree(path, dst, ignore=shutil.ignore_patterns("*-shm"))
        for f in dst.glob("*.db3"):
            f.chmod(0o644)
            if (dst / f"{f.name}-wal").exists():
                (dst / f"{f.name}-wal").chmod(0o644)
                con = sqlite3.connect(f)
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.close()
        self.problems.append(f"{', '.join(str(w) for w in wal)}: WAL file left by an unclean shutdown; read from a "
                             "private copy with the WAL applied")
        return dst

    def messages(self, topics: set[str]) -> Iterator[tuple[str, int, bytes]]:
        conns = [c for t in topics for c in self._by_topic.get(t, [])]
        if not conns:
            return
        for conn, t, data in self.reader.messages(connections=conns):
            yield conn.topic, t, data

    def close(self) -> None:
        try:
            self.reader.close()
        except Exception:
            pass
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class Bag:
    """A rosbag2 folder (or one .mcap file). Use as a context manager.

    Args:
        path: the bag folder (metadata.yaml + storage files) or a single .mcap file.
        msg_dirs: folders of `<pkg>/msg/*.msg` definitions for custom types the bag does not describe.
        strict: `raw()`/`messages()` end with a BagError when the file is damaged (after the readable messages);
            with strict=False they just stop and the reason is in `problems`.
    """

    def __init__(self, path: str | Path, msg_dirs: list[Path] | None = None, strict: bool = True):
        self.path, self.strict = Path(path), strict
        self.storage_name, self.version = "", None
        self.skipped: dict[str, str] = {}
        self.problems: list[str] = []
        self._storage = None
        self.store = typestore(msg_dirs)
        if not self.path.exists():
            raise BagError(f"{self.path}: no such bag")
        try:
            self._storage = self._open()
        except BagError:
            raise
        except Exception as exc:
            raise BagError(f"{self.path}: cannot open bag ({type(exc).__name__}: {_first_line(exc)})") from None
        self.problems.extend(self._storage.problems)
        self.connections = self._storage.connections
        self._register_bag_types()

    def _open(self):
        p = self.path
        if p.is_file():
            if p.suffix == ".mcap":
                self.storage_name = "mcap"
                return _McapStorage([p])
            if p.suffix == ".db3" and (p.parent / "metadata.yaml").exists():
                self.path = p = p.parent
            else:
                raise BagError(f"{p}: not a rosbag2 folder or .mcap file")
        meta = p / "metadata.yaml"
        mcaps = sorted(p.glob("*.mcap"))
        if meta.exists():
            info = _read_metadata(meta)
            self.version = info.get("version")
            self.storage_name = info.get("storage_identifier", "")
            # early rosbag2 wrote paths with the bag folder's name in front
            files = [p / f if (p / f).exists() else p / Path(f).name for f in info.get("relative_file_paths") or []]
            missing = [str(f) for f in files if not f.exists()]
            if missing:
                raise BagError(f"{meta}: lists files that are missing: {missing}")
            if self.storage_name == "mcap" or (not self.storage_name and mcaps):
                self.storage_name = "mcap"
                return _McapStorage([f for f in files if f.suffix == ".mcap"] or mcaps)
            self.storage_name = "sqlite3"
            return _SqliteStorage(p)
        if mcaps:  # MCAP is self-describing: read it, and say metadata.yaml was missing
            self.storage_name = "mcap"
            st = _McapStorage(mcaps)
            st.problems.insert(0, f"{meta}: missing; read the .mcap files directly")
            return st
        raise BagError(f"{meta}: missing (not a rosbag2 folder, or the recording was not closed cleanly)")

    def _register_bag_types(self) -> None:
        from rosbags.typesys import get_types_from_idl, get_types_from_msg

        for c in self.connections:
            if c.msgtype in self.store.types:
                continue
            if not c.msgtype:
                self.skipped[c.topic] = "no message type recorded"
                continue
            if c.definition:
                try:
                    parse = get_types_from_idl if c.definition_format == "idl" else get_types_from_msg
                    types = parse(c.definition) if c.definition_format == "idl" else parse(c.definition, c.msgtype)
                    self.store.register(types)
                    continue
                except Exception as exc:  # a definition that does not parse is reported, not fatal
                    self.skipped[c.topic] = f"type {c.msgtype}: stored definition not usable ({_first_line(exc)})"
                    continue
            self.skipped[c.topic] = f"type {c.msgtype}: no definition in the bag or in the given .msg folders"

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    def __enter__(self) -> Bag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def start_ns(self) -> int | None:
        return None if self._storage.start_time is None else int(self._storage.start_time)

    @property
    def end_ns(self) -> int | None:
        return None if self._storage.end_time is None else int(self._storage.end_time)

    @property
    def duration_s(self) -> float:
        return 0.0 if self.start_ns is None else (self.end_ns - self.start_ns) * 1e-9

    def topics(self) -> dict[str, TopicInfo]:
        out = {}
        for c in self.connections:
            info = out.setdefault(c.topic, TopicInfo(c.topic, c.msgtype, 0))
            info.count += c.count
            if c.topic in self.skipped:
                info.readable, info.note = False, self.skipped[c.topic]
        return out

    def msgtype(self, topic: str) -> str:
        return next((c.msgtype for c in self.connections if c.topic == topic), "")

    def raw(self, topics: list[str] | None = None) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, t_ns, CDR bytes) in receive-time order (per storage file)."""
        types = {c.topic: c.msgtype for c in self.connections}
        wanted = set(types) if topics is None else {t for t in topics if t in types}
        n = 0
        try:
            for topic, t, data in self._storage.messages(wanted):
                n += 1
                yield topic, types[topic], t, data
        except Exception as exc:
            why = str(exc) if isinstance(exc, BagError) else (
                f"{self.path}: read failed after {n} messages ({type(exc).__name__}: {_first_line(exc)}); the bag "
                "is truncated or corrupt, the rest is skipped")
            if why not in self.problems:
                self.problems.append(why)
            if self.strict:
                raise BagError(why) from None

    def messages(self, topics: list[str] | None = None) -> Iterator[tuple[str, int, object]]:
        """(topic, t_ns, deserialized message); topics with unusable types are skipped (see `skipped`), and so is
        a single message that does not deserialize (counted in `problems`)."""
        wanted = [t for t in (topics if topics is not None else [c.topic for c in self.connections])
                  if t not in self.skipped]
        bad: dict[str, int] = {}
        for topic, msgtype, t, data in self.raw(wanted):
            try:
                msg = deserialize_cdr(self.store, data, msgtype)
            except Exception:
                bad[topic] = bad.get(topic, 0) + 1
                continue
            yield topic, t, msg
        for topic, n in bad.items():
            self.problems.append(f"{self.path}: {n} message(s) on {topic} did not deserialize as "
                                 f"{self.msgtype(topic)}; skipped")

    def stamps(self) -> dict[str, TopicInfo]:
        """topics() with the receive time of every message (for rates and gaps)."""
        infos = self.topics()
        for topic, _, t, _ in self.raw():
            infos[topic].stamps_ns.append(t)
        return infos


MAX_CDR_PADDING = 8  # trailing bytes a serializer may add after the last field (rclpy adds up to 7)


def deserialize_cdr(store, data: bytes | memoryview, msgtype: str):
    """The message in CDR `data`. rosbags refuses more than 3 bytes after the last field, but rclpy's serializer
    pads some messages further (e.g. a JointState with empty velocity and effort gets 4 more bytes), and
    `ros2 bag record` stores those bytes as they came; up to MAX_CDR_PADDING trailing bytes are accepted here."""
    try:
        return store.deserialize_cdr(data, msgtype)
    except Exception as exc:
        if "size mismatch" not in str(exc) or len(data) < 4:
            raise
    msgdef = store.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if bool(data[1]) else msgdef.deserialize_cdr_be
    msg, pos = func(memoryview(data)[4:], 0, msgdef.cls, store)
    if len(data) - 4 - pos > MAX_CDR_PADDING:
        raise ValueError(f"{msgtype}: {len(data) - 4 - pos} bytes after the last field")
    return msg


def _read_metadata(path: Path) -> dict:
    """The rosbag2_bagfile_information of a metadata.yaml (any version), or a BagError naming the file."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BagError(f"{path}: cannot read ({_first_line(exc)})") from None
    info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        raise BagError(f"{path}: no rosbag2_bagfile_information section")
    return info
