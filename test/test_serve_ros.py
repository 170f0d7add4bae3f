"""The policy on another machine, end to end over DDS: `vla-ros serve` (a real server process, tiny checkpoint)
and the Franka stack with `policy.backend: openpi` (synthetic robot -> policy node -> chunks -> executor ->
/target_pose). Chunks equal the local backend's; a server down at start fails configure with the URL; a server
killed mid-run shows on /diagnostics, the executor holds on its chunk timeout, and chunks come back when the
server does. Loopback (127.0.0.1) only."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from ros_harness import drive

from vla_ros.core.config import from_dict, to_dict
from vla_ros.ros.synthetic_robot import SyntheticRobot, tiny_checkpoint
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config

pytestmark = pytest.mark.ros
REPO = Path(__file__).resolve().parents[1]


def start_serve(ckpt: str, port: int = 0) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vla_ros.cli", "serve", "--checkpoint", ckpt, "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"vla-ros serve did not start: {proc.stdout.read()}")


def stop_serve(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def with_policy(cfg: RuntimeConfig, **policy) -> RuntimeConfig:
    return from_dict(RuntimeConfig, {**to_dict(cfg), "policy": {**to_dict(cfg.policy), **policy}})




def run_stack(ctx, cfg, n_chunks=3, after=None):
    """Chunks, /target_pose commands and policy /diagnostics of one run of the stack (`after(stack, state)` may
    go on driving once n_chunks arrived)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.launch_set import RobotStack

    node = rclpy.create_node("fake_franka", context=ctx)
    fake = SyntheticRobot(node, cfg)
    st = {"chunks": [], "commands": [], "diag": []}
    node.create_subscription(ActionChunk, cfg.policy.chunk_topic, st["chunks"].append, 50)
    node.create_subscription(PoseStamped, cfg.adapter.command_topics[0], st["commands"].append, 50)
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: st["diag"].extend(s for s in m.status if s.name == "vla_ros: policy"), 50)
    stack = RobotStack(cfg, actuate=True, context=ctx)
    try:
        assert stack.start(), stack.policy.last_error
        assert drive(ctx, node, fake, lambda: len(st["chunks"]) >= n_chunks and len(st["commands"]) >= 3), \
            f"chunks {len(st['chunks'])}, commands {len(st['commands'])}, error {stack.policy.last_error}"
        if after is not None:
            after(stack, st, lambda until, t=20.0: drive(ctx, node, fake, until, t))
    finally:
        stack.stop()
        node.destroy_node()
    return st


def chunk_arrays(msg):
    pos = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses])
    quat = np.array([[p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w] for p in msg.poses])
    return pos, quat, np.asarray(msg.gripper)


def test_openpi_backend_equals_local_over_dds(tmp_path, ros_context, robot_interfaces):
    cfg = with_policy(load_runtime_config("franka"), device="cpu")
    ckpt = tiny_checkpoint(tmp_path, cfg, "falcon")  # reads RGB, depth and camera poses
    local = run_stack(ros_context, with_policy(cfg, checkpoint=ckpt))
    proc, port = start_serve(ckpt)
    try:
        remote = run_stack(ros_context, with_policy(cfg, backend="openpi", url=f"ws://127.0.0.1:{port}"))
    finally:
        stop_serve(proc)
    a, b = local["chunks"][-1], remote["chunks"][-1]
    assert list(b.modalities) == list(a.modalities) == ["rgb", "depth", "pose"]
    assert b.horizon == a.horizon and b.dt_s == a.dt_s and b.reference == a.reference and b.method == a.method
    for x, y in zip(chunk_arrays(a), chunk_arrays(b)):  # the synthetic robot's frames differ only in stamps
        np.testing.assert_allclose(y, x, atol=1e-6)
    stamps = [c.header.stamp.sec + 1e-9 * c.header.stamp.nanosec for c in remote["chunks"]]
    assert all(q > p for p, q in zip(stamps, stamps[1:])), "chunks stamped with increasing observation times"
    assert remote["commands"][-1].header.frame_id == cfg.observation.base_frame


def test_server_down_at_start_then_killed_mid_run(tmp_path, ros_context, robot_interfaces):
    from rclpy.lifecycle import TransitionCallbackReturn as R

    from vla_ros.ros.nodes.policy_node import PolicyNode

    cfg = with_policy(load_runtime_config("franka"), device="cpu")
    ckpt = tiny_checkpoint(tmp_path, cfg, "baseline")
    proc, port = start_serve(ckpt)
    url = f"ws://127.0.0.1:{port}"
    stop_serve(proc)
    from rclpy.parameter import Parameter

    node = PolicyNode(with_policy(cfg, timeout_s=1.0), context=ros_context,  # backend and url as ROS parameters
                      parameter_overrides=[Parameter("backend", value="openpi"), Parameter("url", value=url)])
    try:
        assert node.trigger_configure() == R.FAILURE
        assert url in node.last_error and "policy server" in node.last_error
    finally:
        node.destroy_node()

    procs = [start_serve(ckpt, port)[0]]

    def kill_and_restart(stack, st, drive_more):
        procs[0].kill()
        procs[0].wait()
        n_cmd = len(st["commands"])
        lost = lambda: any("policy server lost" in s.message for s in st["diag"])  # noqa: E731
        assert drive_more(lost, 10.0), [s.message for s in st["diag"][-3:]]
        # the executor holds once the newest chunk is older than its timeout: no new commands after that
        drive_more(lambda: stack.executor_node.core.counters["hold_timeout"] > 0, 5.0)
        assert stack.executor_node.core.counters["hold_timeout"] > 0
        n_hold = len(st["commands"])
        assert n_hold >= n_cmd
        t_end = time.monotonic() + 1.0
        drive_more(lambda: time.monotonic() > t_end, 3.0)
        assert len(st["commands"]) == n_hold, "the executor sends nothing while it holds"
        n_chunks = len(st["chunks"])
        procs[0] = start_serve(ckpt, port)[0]
        assert drive_more(lambda: len(st["chunks"]) > n_chunks + 1, 20.0), "chunks resume when the server is back"
        values = {kv.key: kv.value for kv in st["diag"][-1].values}
        assert int(values["remote/failures"]) >= 1

    try:
        run_stack(ros_context, with_policy(cfg, backend="openpi", url=url, timeout_s=1.0,
                                           checkpoint=""), after=kill_and_restart)
    finally:
        stop_serve(procs[0])
