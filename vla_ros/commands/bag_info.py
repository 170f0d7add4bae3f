"""`vla-ros bag-info BAG [--json] [--config ROBOT]`: topics with type and count, start/end, duration, per-topic
rate and gaps, unreadable topics with the reason, and which topics a robot config would use."""
from __future__ import annotations

import json
import sys

HELP = "summarise a rosbag2 (sqlite3 or MCAP)"


def add_arguments(parser) -> None:
    parser.add_argument("bag", help="rosbag2 folder (or a single .mcap file)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--config", help="robot config (name or YAML): report which of its topics the bag has")
    parser.add_argument("--msg-dir", action="append", default=[], help="folder of <pkg>/msg/*.msg custom types")


def config_topics(name: str) -> dict[str, str]:
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config(name)
    o = cfg.observation
    wanted = {}
    for cam in o.cameras:
        wanted[cam.rgb_topic] = f"rgb {cam.name}"
        wanted[cam.info_topic] = f"camera_info {cam.name}"
        if cam.depth_topic:
            wanted[cam.depth_topic] = f"depth {cam.name}"
    for topic, role in ((o.joint_topic, "joints"), (o.ee_pose_topic, "ee_pose"), (o.instruction_topic, "instruction"),
                        (o.gripper_topic, "gripper"),
                        ("/tf_static", "tf_static"), ("/tf", "tf"), (cfg.policy.chunk_topic, "action chunks"),
                        *((t, "commands") for t in cfg.adapter.command_topics)):
        if topic:
            wanted[topic] = role
    return wanted


def summarise(path: str, config: str | None = None, msg_dirs: list[str] | None = None) -> dict:
    from pathlib import Path

    from vla_ros.data.bags import Bag

    with Bag(path, [Path(d) for d in msg_dirs or []]) as bag:
        infos = bag.stamps()
        start, end = bag.start_ns, bag.end_ns
        skipped = dict(bag.skipped)
    report = {"bag": str(path), "start_ns": start, "end_ns": end, "duration_s": round((end - start) * 1e-9, 6),
              "messages": sum(i.count for i in infos.values()), "topics": [i.summary() for i in infos.values()],
              "skipped": skipped}
    if config:
        wanted = config_topics(config)
        report["config"] = {"name": config, "present": {t: r for t, r in wanted.items() if t in infos},
                            "missing": {t: r for t, r in wanted.items() if t not in infos}}
    return report


def run(args) -> int:
    from vla_ros.core.config import ConfigError
    from vla_ros.data.bags import BagError

    try:
        report = summarise(args.bag, args.config, args.msg_dir)
    except (BagError, ConfigError) as exc:
        print(f"vla-ros bag-info: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"bag: {report['bag']}\nduration: {report['duration_s']:.3f} s   messages: {report['messages']}")
    print(f"{'topic':45s} {'type':42s} {'count':>7s} {'rate Hz':>9s} {'max gap s':>10s}")
    for t in report["topics"]:
        rate = f"{t['rate_hz']:.2f}" if t.get("rate_hz") else "-"
        gap = f"{t['max_gap_s']:.3f}" if "max_gap_s" in t else "-"
        print(f"{t['topic']:45s} {t['type']:42s} {t['count']:7d} {rate:>9s} {gap:>10s}")
    for topic, why in report["skipped"].items():
        print(f"skipped {topic}: {why}")
    if "config" in report:
        for topic, role in report["config"]["present"].items():
            print(f"uses    {topic} ({role})")
        for topic, role in report["config"]["missing"].items():
            print(f"missing {topic} ({role})")
    return 0
