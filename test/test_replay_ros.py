"""`vla-ros replay` over DDS: the live observation pipeline receives the replayed messages and assembles
valid observations (restamped, tf pose included); topic filters and the CLI's errors."""
import subprocess
import sys
import threading
import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from vla_ros.data.bag_writer import write_robot_bag
from vla_ros.runtime_config import load_runtime_config

pytestmark = pytest.mark.ros


def test_replay_feeds_the_live_observation_pipeline(tmp_path, ros_context, robot_interfaces):
    from vla_ros.ros.observation_frontend import ObservationFrontend
    from vla_ros.ros.replay import BagReplayer

    cfg = load_runtime_config("franka")
    bag = write_robot_bag(tmp_path / "rec", cfg, seconds=2.0, storage="sqlite3")
    listener = rclpy.create_node("replay_listener", context=ros_context)
    player = rclpy.create_node("replay_player", context=ros_context)
    frontend = ObservationFrontend(listener, cfg.observation)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(listener)
    ex.add_node(player)
    valid = []
    lock = threading.Lock()

    def spin(timeout):
        with lock:
            ex.spin_once(timeout_sec=timeout)
            obs = frontend.latest(listener.get_clock().now().nanoseconds * 1e-9)
            if obs.valid:
                valid.append(obs)

    try:
        rep = BagReplayer(player, str(bag), rate=1.0)
        assert rep.play(spin=spin) > 100
        deadline = time.monotonic() + 10.0
        while not valid and time.monotonic() < deadline:  # the last messages may still be on their way
            spin(0.01)
    finally:
        ex.shutdown()
        listener.destroy_node()
        player.destroy_node()
    assert valid, f"no valid observation from the replay; rejected {dict(frontend.rejected)}"
    obs = valid[-1]
    cam = obs.cameras[0]
    assert cam.depth_m is not None and abs(float(cam.depth_m[0, 0]) - 0.6) < 1e-6
    assert cam.T_base_camera is not None and abs(cam.T_base_camera[0, 3] - 0.9) < 1e-9
    assert obs.instruction == "put the red block on the platform"
    assert not frontend.rejected


def test_replay_cli_topic_filter_and_errors(tmp_path, robot_interfaces):
    cfg = load_runtime_config("franka")
    bag = write_robot_bag(tmp_path / "rec", cfg, seconds=1.0)
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "replay", str(bag), "--rate", "4", "--topics",
                          "/joint_states"], capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "published 50 messages on 1 topics" in out.stdout
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "replay", str(tmp_path / "nope")],
                         capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 1 and "no such bag" in out.stderr and "Traceback" not in out.stderr
