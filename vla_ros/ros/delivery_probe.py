"""Measure camera-frame delivery between processes: a subscriber here counts what reaches it against the
publisher's sequence numbers (core/delivery.py). Used by `vla-ros doctor` (the robot's live topics), by
`vla-ros bench` and by the tests (a synthetic camera started as a separate process)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from vla_ros.core.delivery import DeliveryMonitor
from vla_ros.dds import PROFILE_VARS


def listen(topics: dict[str, str], seconds: float, context=None, monitor: DeliveryMonitor | None = None,
           until=None) -> DeliveryMonitor:
    """Subscribe `topics` (source name -> sensor_msgs/Image topic) best-effort for `seconds` (or until
    `until()` is true) and return the monitor with what arrived."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    from vla_ros.ros import qos

    monitor = monitor or DeliveryMonitor()
    node = rclpy.create_node("vla_delivery_probe", context=context)

    def make(source):
        def cb(msg, info):
            src = info["source_timestamp"]
            monitor.add(source, bytes(info["publisher_gid"]["data"]), info["publication_sequence_number"],
                        len(msg.data), (info["received_timestamp"] - src) * 1e-9 if src else None)
        return cb

    for source, topic in topics.items():
        node.create_subscription(Image, topic, make(source), qos.SENSOR)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end and not (until and until()):
            ex.spin_once(timeout_sec=0.02)
    finally:
        ex.shutdown()
        node.destroy_node()
    return monitor


def start_synthetic_camera(height: int, width: int, seconds: float, hz: float = 30.0, profile: bool = True,
                           config: str = "franka") -> subprocess.Popen:
    """The synthetic robot (RGB + aligned 16UC1 depth + CameraInfo) as a separate process, as a camera driver
    is on a robot PC; `profile=False` starts it with Fast DDS's defaults."""
    env = dict(os.environ)
    if not profile:
        for v in PROFILE_VARS:
            env.pop(v, None)
        env["VLA_ROS_DDS_PROFILE"] = "0"
    cmd = [sys.executable, "-m", "vla_ros.ros.synthetic_robot", "--config", config, "--size", str(height), str(width),
           "--camera-hz", str(hz), "--joint-hz", "50", "--seconds", str(seconds)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def cross_process(height: int, width: int, seconds: float = 5.0, profile: bool = True, context=None) -> dict:
    """Publish RGB-D of height x width at 30 Hz from another process for `seconds`; what arrived here, per
    stream ("rgb", "depth"): received, published, fraction, size_bytes, latencies_s."""
    from vla_ros.runtime_config import load_runtime_config

    cam = load_runtime_config("franka").observation.cameras[0]
    proc = start_synthetic_camera(height, width, seconds + 1.0, profile=profile)
    try:
        monitor = listen({"rgb": cam.rgb_topic, "depth": cam.depth_topic}, seconds + 1.5, context,
                         until=lambda: proc.poll() is not None)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return monitor.report()
