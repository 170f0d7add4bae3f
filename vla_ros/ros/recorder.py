"""Record the runtime to a rosbag2 (MCAP by default) that standard tools open: observations' source topics,
ActionChunks, executed commands, diagnostics. Messages are stored as received (serialized CDR, no copy into
Python objects); type definitions are embedded so the bag is self-describing."""
from __future__ import annotations

import threading
from pathlib import Path

from rclpy.qos import QoSProfile, ReliabilityPolicy

REPO_MSG_DIR = Path(__file__).resolve().parents[2] / "msg"
INTERFACES_DIR = Path(__file__).resolve().parents[2] / "interfaces"


def _msg_dir() -> Path:
    """msg/ of a checkout, else the installed share/vla_ros/msg (rosidl installs the definitions)."""
    if REPO_MSG_DIR.is_dir():
        return REPO_MSG_DIR
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("vla_ros")) / "msg"
    except (ImportError, LookupError):
        return REPO_MSG_DIR


def typestore_with_project_types():
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.LATEST)
    types = {}
    for f in sorted(_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(f.read_text(), f"vla_ros/msg/{f.stem}"))
    for f in sorted(INTERFACES_DIR.glob("*/msg/*.msg")):
        types.update(get_types_from_msg(f.read_text(), f"{f.parent.parent.name}/msg/{f.stem}"))
    store.register(types)
    return store


class BagRecorder:
    """Subscribes (raw) to `topics` as they appear and writes every message with its receive time."""

    def __init__(self, node, path: str | Path, topics: list[str], storage: str = "mcap", callback_group=None):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.node, self.topics = node, list(topics)
        self.store = typestore_with_project_types()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(Path(path), version=9, storage_plugin=plugin)
        self.writer.open()
        self.lock = threading.Lock()
        self.conns, self.subs, self.counts, self.skipped = {}, {}, {}, {}
        self._closed = False
        self.timer = node.create_timer(0.5, self.discover, callback_group=callback_group)
        self.discover()

    def discover(self) -> None:
        from vla_ros.ros.replay import message_class

        for topic, types in self.node.get_topic_names_and_types():
            if topic not in self.topics or topic in self.subs or topic in self.skipped:
                continue
            msgtype = types[0]
            if msgtype not in self.store.types:
                self.skipped[topic] = f"type {msgtype} unknown to the recorder"
                continue
            cls = message_class(msgtype)
            if cls is None:
                self.skipped[topic] = f"type {msgtype} not importable"
                continue
            with self.lock:
                self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=self.store)
            qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
            self.subs[topic] = self.node.create_subscription(cls, topic, self._writer_for(topic), qos, raw=True)

    def _writer_for(self, topic: str):
        def cb(data: bytes) -> None:
            t = self.node.get_clock().now().nanoseconds
            with self.lock:
                if not self._closed:
                    self.writer.write(self.conns[topic], t, data)
                    self.counts[topic] = self.counts.get(topic, 0) + 1
        return cb

    def close(self) -> dict:
        self.timer.cancel()
        for sub in self.subs.values():
            self.node.destroy_subscription(sub)
        with self.lock:
            self._closed = True
            self.writer.close()
        return dict(self.counts)


def runtime_topics(cfg) -> list[str]:
    o = cfg.observation
    topics = {cfg.policy.chunk_topic, "/vla_executor/commanded", "/diagnostics", o.joint_topic, o.instruction_topic,
              "/tf_static", "/tf", *cfg.adapter.command_topics}
    for cam in o.cameras:
        topics |= {cam.rgb_topic, cam.info_topic} | ({cam.depth_topic} if cam.depth_topic else set())
    if o.ee_pose_topic:
        topics.add(o.ee_pose_topic)
    return sorted(topics)
