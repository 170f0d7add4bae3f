"""`vla-ros doctor [--robot franka] [--seconds 5]`: is this machine's ROS set-up fit to feed a policy?

Prints the DDS environment (RMW, discovery range, domain, the Fast DDS profile in use), then listens to the robot
config's camera topics and reports, per topic, how many of the frames the publisher sent arrived (publisher
sequence numbers), their rate, size and transport latency, naming the likely cause of any shortfall.
`--profile` prints the line that gives another process (a camera driver) vla_ros's profile. Exit status 1 when a
camera topic is silent or loses frames.
"""
from __future__ import annotations

import os

import numpy as np

from vla_ros.dds import PROFILE_VARS, apply_dds_defaults, export_line

HELP = "check DDS transport of the robot's camera topics (delivery, rate, latency) and name problems"


def add_arguments(parser) -> None:
    parser.add_argument("--robot", default="franka", help="robot config name or YAML whose camera topics to check")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to listen")
    parser.add_argument("--profile", action="store_true", help="print the export line for vla_ros's DDS profile")


def run(args) -> int:
    if args.profile:
        print(export_line())
        return 0
    apply_dds_defaults()
    from vla_ros.ros.delivery_probe import listen
    from vla_ros.ros.spin import init_ros
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config(args.robot)
    profile = next((os.environ[v] for v in PROFILE_VARS if os.environ.get(v)), "(Fast DDS defaults)")
    env = os.environ
    print(f"RMW {env.get('RMW_IMPLEMENTATION', 'default')}, discovery "
          f"{env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'default')}, domain {env.get('ROS_DOMAIN_ID', '0')}, "
          f"profile {profile}")
    topics = {}
    for cam in cfg.observation.cameras:
        topics[f"rgb/{cam.name} {cam.rgb_topic}"] = cam.rgb_topic
        if cam.depth_topic:
            topics[f"depth/{cam.name} {cam.depth_topic}"] = cam.depth_topic
    init_ros()
    import rclpy

    try:
        monitor = listen(topics, args.seconds)
    except KeyboardInterrupt:
        return 130
    finally:
        rclpy.try_shutdown()
    report, ok = monitor.report(), True
    for source in topics:
        r = report.get(source)
        if r is None:
            print(f"{source}: nothing received in {args.seconds:.0f} s (is the driver running, on this ROS_DOMAIN_ID?)")
            ok = False
            continue
        lat = f", latency {1e3 * float(np.median(r['latencies_s'])):.1f} ms median" if r["latencies_s"] else ""
        print(f"{source}: {r['received']} of {r['published']} frames arrived ({100 * r['fraction']:.0f}%), "
              f"{r['received'] / args.seconds:.1f} Hz received, {r['size_bytes'] / 1024:.0f} KiB each{lat}")
    for line in monitor.warnings():
        print("PROBLEM " + line)
        ok = False
    return 0 if ok else 1
