"""Every safety layer on the live executor node over DDS: workspace clamp counted, NaN chunk refused, hold when
chunks stop, e-stop stops the output, dry run publishes nothing to the controller, a second publisher on the
controller topic makes it refuse to actuate."""
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from ros_harness import held_chunk
from std_srvs.srv import Trigger

from vla_ros.ros.chunk_msg import chunk_to_msg
from vla_ros.runtime_config import load_runtime_config

pytestmark = pytest.mark.ros


class Rig:
    def __init__(self, ctx, actuate=True):
        from vla_ros.msg import ActionChunk as ActionChunkMsg
        from vla_ros.ros.nodes.executor_node import ExecutorNode

        self.cfg = load_runtime_config("franka")
        self.node = ExecutorNode(self.cfg, context=ctx, parameter_overrides=[Parameter("actuate", value=actuate)])
        self.io = rclpy.create_node("executor_test_io", context=ctx)
        self.policy = rclpy.create_node("vla_policy", context=ctx)  # the executor takes chunks from this node only
        self.chunks = self.policy.create_publisher(ActionChunkMsg, self.cfg.executor.chunk_topic, 10)
        self.targets, self.commanded = [], []
        self.io.create_subscription(PoseStamped, "/target_pose", self.targets.append, 100)
        self.io.create_subscription(PoseArray, "/vla_executor/commanded", self.commanded.append, 100)
        self.ex = MultiThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(self.io)
        self.ex.add_node(self.policy)
        self.seq = 0

    def now(self):
        return self.io.get_clock().now().nanoseconds * 1e-9

    def send(self, x=0.5, z=0.3, nan=False, ahead_s=0.0, publisher=None, gripper=1.0):
        c = held_chunk(self.now() + ahead_s, [x, 0.0, z], frame_id="fr3_link0", gripper=gripper, seq=self.seq)
        if nan:
            c.position_m[3, 0, 1] = np.nan
        self.seq += 1
        (publisher or self.chunks).publish(chunk_to_msg(c))

    def spin(self, seconds, feed=None, period=0.2):
        end, next_feed = time.monotonic() + seconds, 0.0
        while time.monotonic() < end:
            if feed and time.monotonic() >= next_feed:
                feed()
                next_feed = time.monotonic() + period
            self.ex.spin_once(timeout_sec=0.01)

    def spin_until(self, done, timeout_s=30.0, feed=None):
        """Spin (feeding chunks) until done() or the deadline: a condition, not a fixed window."""
        end = time.monotonic() + timeout_s
        while not done() and time.monotonic() < end:
            self.spin(0.2, feed=feed)
        return done()

    def count(self, key: str) -> int:
        """The executor's counter `key`, or the sum of those whose name contains it."""
        counters = self.node.core.counters
        return counters[key] if key in counters else sum(v for k, v in counters.items() if key in k)

    def spin_ticks(self, key: str, n: int, feed=None) -> None:
        """Spin until the executor's counter `key` has grown by `n` (its own ticks, however slow the machine):
        the window in which something must not happen."""
        start = self.count(key)
        assert self.spin_until(lambda: self.count(key) >= start + n, feed=feed), f"{key} stopped counting"

    def call(self, name):
        cli = self.io.create_client(Trigger, f"/vla_executor/{name}")
        assert cli.wait_for_service(timeout_sec=5.0)
        fut = cli.call_async(Trigger.Request())
        end = time.monotonic() + 5
        while not fut.done() and time.monotonic() < end:
            self.ex.spin_once(timeout_sec=0.01)
        return fut.result()

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.io.destroy_node()
        self.policy.destroy_node()


@pytest.fixture
def rig(ros_context, robot_interfaces):
    r = Rig(ros_context)
    yield r
    r.close()


def test_workspace_clamp_is_counted_and_output_stays_inside(rig):
    assert rig.spin_until(lambda: len(rig.targets) > 5 and rig.count("clamp_workspace") > 0,
                          feed=lambda: rig.send(z=-0.2)), "no command reached the controller topic"  # below the table
    z = [m.pose.position.z for m in rig.targets]
    assert min(z) >= rig.cfg.executor.safety.workspace_min_m[2] - 1e-9
    assert rig.node.core.counters["clamp_workspace"] > 0


def test_nan_chunk_is_refused(rig):
    rig.spin_ticks("non-finite", 3, feed=lambda: rig.send(nan=True))
    assert not rig.targets and not rig.commanded


def test_hold_within_timeout_when_chunks_stop(rig):
    assert rig.spin_until(lambda: rig.targets, feed=rig.send)
    rig.spin_ticks("hold_timeout", 1)  # policy stops publishing: the executor holds
    n = rig.count("commands")
    rig.spin_ticks("hold_timeout", 20)
    assert rig.count("commands") == n, "executor kept commanding after the chunk timeout"


def test_estop_stops_output(rig):
    assert rig.spin_until(lambda: rig.targets, feed=rig.send)
    assert rig.call("estop").success
    n = rig.count("commands")
    rig.spin(1.0, feed=rig.send)
    assert rig.count("commands") == n
    sent = len(rig.targets)
    assert rig.call("release_estop").success
    assert rig.spin_until(lambda: rig.count("commands") > n and len(rig.targets) > sent, feed=rig.send), \
        "no command after release_estop"


def test_second_publisher_on_controller_topic_refuses_actuation(rig):
    other = rig.io.create_publisher(PoseStamped, "/target_pose", 10)  # e.g. a teleop node left running
    rig.spin_ticks("refused_second_publisher", 5, feed=rig.send)
    assert not rig.targets
    rig.io.destroy_publisher(other)


def test_dry_run_publishes_nothing_to_the_controller(ros_context, robot_interfaces):
    r = Rig(ros_context, actuate=False)
    try:
        assert r.spin_until(lambda: len(r.commanded) > 5, feed=r.send), "the executor should still compute and " \
                                                                          "report its commands"
        assert not r.targets
        assert r.node.count_publishers("/target_pose") == 0
    finally:
        r.close()


def test_franka_gripper_goals_once_per_crossing(ros_context, robot_interfaces):
    """Gripper 1 -> 0 -> 1 over many ticks sends one Grasp and then one Move goal (hysteresis), over DDS."""
    from franka_msgs.action import Grasp, Move
    from rclpy.action import ActionServer

    r = Rig(ros_context)
    goals = []

    def serve(kind):
        def execute(handle):
            goals.append((kind, handle.request.width, getattr(handle.request, "force", None)))
            handle.succeed()
            return (Grasp if kind == "grasp" else Move).Result(success=True)
        return execute

    servers = [ActionServer(r.io, Grasp, "/franka_gripper/grasp", serve("grasp")),
               ActionServer(r.io, Move, "/franka_gripper/move", serve("move"))]
    try:
        def crossing(width, kind):  # the gripper goes to `width` and stays there for many commands
            assert r.spin_until(lambda: any(g[0] == kind for g in goals), feed=lambda: r.send(gripper=width)), goals
            r.spin_ticks("commands", 50, feed=lambda: r.send(gripper=width))

        r.spin_ticks("commands", 20, feed=lambda: r.send(gripper=1.0))
        crossing(0.0, "grasp")
        crossing(1.0, "move")
    finally:
        for s in servers:
            s.destroy()
        r.close()
    kinds = [g[0] for g in goals]
    assert kinds == ["grasp", "move"], goals
    assert goals[0][2] == pytest.approx(20.0) and goals[1][1] == pytest.approx(0.08)


def test_rogue_publisher_neither_drives_nor_locks_out_the_policy(rig):
    """Finding 2: one future-stamped chunk from another publisher on the chunk topic kept commands flowing 2.5 s
    into a sensor outage and locked out the real policy for 6 s. Now it is refused by publisher, and the policy's
    own future-stamped chunks are refused by stamp."""
    from vla_ros.msg import ActionChunk as ActionChunkMsg

    rogue = rig.io.create_publisher(ActionChunkMsg, rig.cfg.executor.chunk_topic, 10)
    rig.spin_ticks("refused_chunk: not from the policy node", 3, feed=lambda: rig.send(ahead_s=10.0, publisher=rogue))
    assert not rig.targets, "a chunk from another publisher drove the arm"
    assert rig.spin_until(lambda: rig.targets, feed=rig.send), \
        "the policy node's chunks were locked out by the rogue's future stamp"
    rig.spin_ticks("hold_timeout", 1)  # the policy stops: the executor holds on its chunk timeout
    held = rig.count("commands")
    rig.spin_ticks("hold_timeout", 20)
    assert rig.count("commands") == held, "commands went on after the policy stopped"


def test_future_stamped_chunks_from_the_policy_are_refused(rig):
    rig.spin_ticks("refused_chunk: chunk stamped N s in the future > max N s", 3, feed=lambda: rig.send(ahead_s=10.0))
    assert not rig.targets


def test_config_is_mirrored_as_read_only_parameters(ros_context, robot_interfaces):
    """`ros2 param get /vla_executor executor.safety.max_speed_m_s` over the parameter services: the YAML's
    executor, safety and adapter values with units and ranges in their descriptors; a set is refused."""
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter_client import AsyncParameterClient

    r = Rig(ros_context, actuate=False)
    names = ["executor.safety.max_speed_m_s", "executor.rate_hz", "executor.blend_steps", "executor.mode",
             "executor.arm_names", "executor.safety.workspace_min_m", "adapter.robot",
             "adapter.settings.grasp_force_n"]
    try:
        client = AsyncParameterClient(r.io, "/vla_executor")
        assert client.wait_for_services(timeout_sec=10.0)

        def result(future):
            end = time.monotonic() + 10.0
            while not future.done() and time.monotonic() < end:
                r.ex.spin_once(timeout_sec=0.01)
            return future.result()

        values = result(client.get_parameters(names)).values
        described = {d.name: d for d in result(client.describe_parameters(names)).descriptors}
        refused = result(client.set_parameters([Parameter("executor.safety.max_speed_m_s", value=9.0)])).results
        after = result(client.get_parameters(["executor.safety.max_speed_m_s"])).values[0].double_value
    finally:
        r.close()
    s = r.cfg.executor.safety
    assert values[0].type == ParameterType.PARAMETER_DOUBLE and values[0].double_value == s.max_speed_m_s
    assert values[1].double_value == r.cfg.executor.rate_hz and values[2].integer_value == r.cfg.executor.blend_steps
    assert values[3].string_value == r.cfg.executor.mode and list(values[4].string_array_value) == ["arm"]
    assert list(values[5].double_array_value) == s.workspace_min_m
    assert values[6].string_value == "franka" and values[7].double_value == r.cfg.adapter.settings.grasp_force_n
    speed = described["executor.safety.max_speed_m_s"]
    assert speed.read_only and "m/s" in speed.description and "range [1e-06, 100.0]" in speed.description
    assert speed.floating_point_range[0].to_value == 100.0
    assert described["executor.rate_hz"].description.startswith("Hz; range [0.5, 2000.0]")
    assert "one of ['ensemble', 'splice']" in described["executor.mode"].description
    assert "N; range" in described["adapter.settings.grasp_force_n"].description
    assert all(d.read_only for d in described.values()) and set(described) == set(names)
    assert not refused[0].successful and "read-only" in refused[0].reason
    assert after == s.max_speed_m_s


def test_control_rate_and_jitter_reach_diagnostics(rig):
    """The control thread's own tick instants give /diagnostics its achieved rate and jitter p99; the thread runs
    on SCHED_FIFO at executor.thread_priority where the process may (root here), else on the default one."""
    import os

    from diagnostic_msgs.msg import DiagnosticArray

    got = []
    rig.io.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    assert rig.spin_until(lambda: any(s.name.endswith("vla_ros: executor") and
                                      any(kv.key == "jitter_ms_p99" for kv in s.values)
                                      for m in got for s in m.status))
    values = {kv.key: kv.value for m in got for s in m.status if s.name.endswith("vla_ros: executor")
              for kv in s.values}
    rate = float(values["rate_hz_achieved"])
    assert 0.5 * rig.cfg.executor.rate_hz < rate < 1.5 * rig.cfg.executor.rate_hz
    assert float(values["jitter_ms_p99"]) >= 0.0
    policy = os.sched_getscheduler(rig.node._control.native_id)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # may this process use SCHED_FIFO at all?
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        assert policy == os.SCHED_FIFO
    except PermissionError:
        assert policy == os.SCHED_OTHER
