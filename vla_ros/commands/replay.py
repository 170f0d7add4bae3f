"""`vla-ros replay BAG [--rate R] [--loop] [--start-offset S] [--topics T ...] [--no-restamp]`."""
from __future__ import annotations

import sys

from vla_ros.dds import apply_dds_defaults

HELP = "publish a rosbag2's messages with their original timing"


def add_arguments(parser) -> None:
    parser.add_argument("bag")
    parser.add_argument("--rate", type=float, default=1.0, help="playback rate factor")
    parser.add_argument("--loop", action="store_true")
    parser.add_argument("--start-offset", type=float, default=0.0, help="seconds into the bag to start at")
    parser.add_argument("--topics", nargs="+", help="only these topics")
    parser.add_argument("--no-restamp", action="store_true", help="keep the recorded header stamps")


def run(args) -> int:
    apply_dds_defaults()  # loopback discovery, and the large-frame Fast DDS profile
    import rclpy

    from vla_ros.data.bags import BagError
    from vla_ros.ros.replay import BagReplayer

    if args.rate <= 0:
        print("vla-ros replay: --rate must be positive", file=sys.stderr)
        return 2
    rclpy.init()
    node = rclpy.create_node("vla_replay")
    try:
        rep = BagReplayer(node, args.bag, args.rate, args.loop, args.start_offset, args.topics, not args.no_restamp)
        for topic, why in rep.skipped.items():
            print(f"skipping {topic}: {why}", file=sys.stderr)
        n = rep.play(spin=lambda t: rclpy.spin_once(node, timeout_sec=t))
        print(f"vla-ros replay: published {n} messages on {len(rep.pubs)} topics")
        return 0
    except BagError as exc:
        print(f"vla-ros replay: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
