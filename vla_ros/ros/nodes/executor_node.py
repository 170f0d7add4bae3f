"""Executor node (robot side): plays ActionChunks at the controller rate through the robot adapter, behind
layered safety. Dry-run by default: commands reach the controller topic only with `actuate:=true`.

Topics: subscribes the chunk topic (chunks from a publisher other than the configured policy node are refused,
by publisher GID) and (optionally) the measured pose; publishes `~/commanded`
(geometry_msgs/PoseArray, every command, dry-run included), the consumed-chunk signal and /diagnostics.
Parameters: `config`, `actuate`, and the config's executor and adapter sections mirrored read-only
(`executor.safety.max_speed_m_s`, `adapter.settings.group`, ...; units and ranges in their descriptions).
Services (std_srvs/Trigger): `~/pause`, `~/resume`, `~/estop`, `~/release_estop` and `~/reset` (a new episode:
chunks and the last command are dropped). Every callback is short (a chunk is decoded and validated in well under
a millisecond), so on the node's one executor thread an e-stop waits at most for the callback in progress.

The control loop runs on a thread of its own against the monotonic clock (absolute deadlines, no catch-up
bursts), not on an rclpy timer: a Python executor's timer stalls behind other callbacks and the GIL (measured:
71 Hz of a 200 Hz target, p99 jitter 156-392 ms). It publishes through rclpy; one lock serialises it with the
chunk, pose and service callbacks.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_msgs.msg import UInt64
from std_srvs.srv import Trigger

from vla_ros.core.chunking import Target, step_times
from vla_ros.core.constants import REF_DELTA_MEASURED, UNIT_QUAT_TOL
from vla_ros.core.executor import Executor, tick_timing
from vla_ros.core.log_causes import CauseThrottle
from vla_ros.core.observation_feed import pose_fields_to_array
from vla_ros.core.pose_history import PoseHistory
from vla_ros.msg import ActionChunk as ActionChunkMsg
from vla_ros.ros import qos
from vla_ros.ros.adapters import AdapterPublisher
from vla_ros.ros.chunk_msg import msg_to_chunk
from vla_ros.ros.config_params import declare_read_only
from vla_ros.ros.diagnostics import status_array
from vla_ros.ros.msg_conversions import array_to_pose_msg
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config


class ExecutorNode(Node):
    def __init__(self, config: RuntimeConfig | None = None, **kwargs):
        super().__init__("vla_executor", **kwargs)
        self.declare_parameter("config", "franka", ParameterDescriptor(
            description="robot config name (config/<name>.yaml) or path", read_only=True))
        self.declare_parameter("actuate", False, ParameterDescriptor(
            description="send commands to the controller (false = dry run)", read_only=True))
        cfg = config or load_runtime_config(self.get_parameter("config").value)
        self.cfg = cfg
        for section in ("executor", "adapter"):  # read-only mirrors: `ros2 param get /vla_executor executor.rate_hz`
            declare_read_only(self, section, getattr(cfg, section))
        self.actuate = bool(self.get_parameter("actuate").value)  # explicit opt-in; dry run otherwise
        self.core = Executor(cfg.executor)
        self.measured: Target | None = None
        self._reset_request: float | None = None
        self.pose_history = PoseHistory(horizon_s=max(2.0, cfg.executor.safety.max_chunk_age_s))
        self._consumed_seq: int | None = None
        self._newest_chunk = None
        self._publisher_check = (-1e18, False)
        self._policy_gids: set[bytes] = set()
        self._gid_refresh_s = -1e18
        self._log = CauseThrottle(5.0)
        control = MutuallyExclusiveCallbackGroup()
        safety = MutuallyExclusiveCallbackGroup()
        self.adapter = AdapterPublisher(self, cfg.adapter, cfg.executor.base_frame, control) if self.actuate else None
        self.create_subscription(ActionChunkMsg, cfg.executor.chunk_topic, self._on_chunk, qos.RELIABLE,
                                 callback_group=control)
        if cfg.executor.measured_pose_topic:
            self.create_subscription(PoseStamped, cfg.executor.measured_pose_topic, self._on_pose, qos.SENSOR,
                                     callback_group=control)
        self.commanded_pub = self.create_publisher(PoseArray, "~/commanded", qos.RELIABLE)
        self.consumed_pub = self.create_publisher(UInt64, cfg.policy.consumed_topic, qos.RELIABLE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for name, fn in (("pause", self._pause), ("resume", self._resume), ("estop", self._estop),
                         ("release_estop", self._release), ("reset", self._reset)):
            self.create_service(Trigger, f"~/{name}", fn, callback_group=safety)
        self._lock = threading.Lock()  # the core is shared by the control thread and the callbacks
        self._stop = threading.Event()
        self.ticks_late = 0
        self.tick_times_s: deque[float] = deque(maxlen=4000)  # monotonic instant of each tick: rate and jitter
        self.create_timer(1.0, self._diagnostics, callback_group=safety)
        self.last_command = None
        # A waiting thread gets the GIL back within the switch interval (5 ms by default); 0.5 ms keeps the
        # control loop's jitter below a millisecond while the inference thread and the callbacks run.
        sys.setswitchinterval(min(sys.getswitchinterval(), 5e-4))
        self._control = threading.Thread(target=self._control_loop, name="vla_control", daemon=True)
        self._control.start()
        self.get_logger().info(f"executor for {cfg.robot} at {cfg.executor.rate_hz} Hz, mode {cfg.executor.mode}, "
                               f"{'ACTUATING' if self.actuate else 'dry run (actuate:=false)'}")

    def _control_loop(self) -> None:
        self._prioritise(self.cfg.executor.thread_priority)
        period = 1.0 / self.cfg.executor.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                if self._stop.wait(delay):
                    break
            elif delay < -period:  # a whole period missed: skip it rather than burst to catch up
                self.ticks_late += 1
                next_t = time.monotonic()
            self.tick_times_s.append(time.monotonic())
            try:
                self._tick()
            except Exception as exc:  # never let the loop die; the hold comes from the chunk timeout
                self.core.counters["control_loop_errors"] += 1
                self.warn(f"control loop: {type(exc).__name__}: {exc}")

    def _prioritise(self, priority: int) -> None:
        """This (control) thread on SCHED_FIFO at `priority`: on a loaded machine the default scheduler let it
        wait up to a time slice (~4 ms at 200 Hz with a policy inferring in the same process, `vla-ros bench`)."""
        if not priority:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except (PermissionError, OSError, AttributeError) as exc:
            self.get_logger().warning(f"executor.thread_priority {priority}: SCHED_FIFO refused ({exc}); the control "
                                      "loop runs on the default scheduler (allow it with `rtprio` in "
                                      "/etc/security/limits.conf, or set executor.thread_priority: 0)")

    def destroy_node(self):
        self._stop.set()
        if self._control.is_alive() and self._control is not threading.current_thread():
            self._control.join(timeout=2.0)
        return super().destroy_node()

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_pose(self, msg: PoseStamped) -> None:
        p = pose_fields_to_array(msg.pose)
        norm = np.linalg.norm(p[3:])
        if np.isfinite(p).all() and abs(norm - 1.0) < UNIT_QUAT_TOL:
            self.measured = Target(p[None, :3], p[None, 3:] / norm, np.ones(1))
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            self.pose_history.add(stamp if stamp > 0 else self.now_s(), np.r_[p[:3], p[3:] / norm])
        else:
            self.core.counters["rejected_measured_pose"] += 1

    def warn(self, message: str) -> None:
        line = self._log.line(message, self.now_s())
        if line is not None:
            self.get_logger().warning(line)

    def _from_policy_node(self, gid: bytes) -> bool:
        """Is `gid` a publisher of the configured policy node on the chunk topic? The graph is asked again for
        an unknown GID at most every 0.2 s, so a flood from a rogue publisher costs no graph queries."""
        if gid in self._policy_gids:
            return True
        now = self.now_s()
        if now - self._gid_refresh_s > 0.2:
            self._gid_refresh_s = now
            want = self.cfg.executor.policy_node
            self._policy_gids = {bytes(i.endpoint_gid) for i in self.get_publishers_info_by_topic(
                self.cfg.executor.chunk_topic) if f"{i.node_namespace.rstrip('/')}/{i.node_name}" == want}
        return gid in self._policy_gids

    def _on_chunk(self, msg, info) -> None:
        policy = self.cfg.executor.policy_node
        if policy and not self._from_policy_node(bytes(info["publisher_gid"]["data"])):
            self.core.counters["refused_chunk: not from the policy node"] += 1
            self.warn(f"refused chunk {msg.sequence_id}: not published by the policy node {policy} (another "
                      f"publisher on {self.cfg.executor.chunk_topic}; set executor.policy_node: '' to accept any)")
            return
        try:
            chunk = msg_to_chunk(msg)
        except ValueError as exc:
            self.core.counters["refused_chunk: malformed"] += 1
            self.warn(f"refused chunk: {exc}")
            return
        with self._lock:  # never between the control thread's tick and its publish (a reset, an e-stop)
            self._apply_reset()
            measured = self.measured
            if chunk.reference == REF_DELTA_MEASURED:  # compose with the pose measured when the robot was observed
                measured, how = self.pose_history.at(chunk.stamp_s)
                if how != "interpolated":
                    self.core.counters[f"delta_measured_pose_{how}"] += 1
            reasons = self.core.on_chunk(chunk, self.now_s(), measured)
            if not reasons:
                self._newest_chunk = chunk
        if reasons:
            self.warn(f"refused chunk {chunk.seq}: {'; '.join(reasons)}")

    def _controller_has_other_publishers(self, now_s: float) -> bool:
        """A graph query per tick would cost more than the tick at 200 Hz: refresh every 0.2 s."""
        if now_s - self._publisher_check[0] > 0.2:
            other = any(self.count_publishers(t) > 1 for t in self.adapter.controller_topics())
            self._publisher_check = (now_s, other)
        return self._publisher_check[1]

    def _tick(self) -> None:
        """One command, computed and sent under the lock: an e-stop or pause acknowledged by a service has
        happened either before this tick (no command) or after its command was sent."""
        with self._lock:
            self._tick_locked()

    def _tick_locked(self) -> None:
        self._apply_reset()
        now = self.now_s()
        cmd = self.core.tick(now, self.measured)
        c = self._newest_chunk
        if c is not None and self._consumed_seq != c.seq and now >= step_times(c)[-1] - c.dt_s:
            self._consumed_seq = c.seq
            self.consumed_pub.publish(UInt64(data=int(c.seq)))
        if cmd.kind != "move":
            self.last_command = cmd
            return
        arr = PoseArray()
        arr.header.stamp, arr.header.frame_id = self.get_clock().now().to_msg(), self.cfg.executor.base_frame
        arr.poses = [array_to_pose_msg(np.r_[cmd.target.position_m[a], cmd.target.quat_xyzw[a]])
                     for a in range(len(cmd.target.gripper))]
        self.commanded_pub.publish(arr)
        self.last_command = cmd
        if self.adapter is None:
            return
        if self._controller_has_other_publishers(now):
            self.core.counters["refused_second_publisher"] += 1
            topics = self.adapter.controller_topics()
            self.get_logger().error(f"refusing to actuate: another node publishes on {topics}",
                                    throttle_duration_sec=2.0)
            return
        self.adapter.send(cmd.target, now)

    def _diagnostics(self) -> None:
        c = self.core.counters
        state = "estop" if self.core.estopped else "paused" if self.core.paused else (
            self.last_command.kind if self.last_command else "idle")
        level = "error" if self.core.estopped or c["refused_second_publisher"] else (
            "warn" if state == "hold" else "ok")
        msg = self.last_command.reason if self.last_command is not None and self.last_command.reason else state
        self.diag_pub.publish(status_array(self, "vla_ros: executor", level, msg,
                                           {"state": state, "actuate": self.actuate, "ticks_late": self.ticks_late,
                                            **self.rate_figures(), **dict(c)}))

    def rate_figures(self, window: int = 1000) -> dict[str, float]:
        """Achieved control rate and the p99 of |tick gap - period| over the last `window` ticks."""
        achieved, jitter = tick_timing(list(self.tick_times_s)[-window:], self.cfg.executor.rate_hz)
        if not jitter.size:
            return {}
        return {"rate_hz_achieved": round(achieved, 3),
                "jitter_ms_p99": round(1e3 * float(np.percentile(jitter, 99)), 3)}

    def _pause(self, req, resp):
        with self._lock:
            self.core.paused = True
        resp.success, resp.message = True, "paused"
        return resp

    def _resume(self, req, resp):
        with self._lock:
            self.core.paused = False
        resp.success, resp.message = True, "resumed"
        return resp

    def _estop(self, req, resp):
        with self._lock:
            self.core.estop()
        resp.success, resp.message = True, "e-stop engaged: no command is sent until release_estop"
        self.get_logger().error("E-STOP engaged")
        return resp

    def _reset(self, req, resp):
        """New episode: applied by the control loop (its own callback group), never mid-tick."""
        self._reset_request = self.now_s()
        resp.success, resp.message = True, "reset: chunks and the last command dropped"
        return resp

    def _apply_reset(self) -> None:
        if self._reset_request is not None:
            self.core.reset(self._reset_request)
            self._reset_request, self._newest_chunk = None, None

    def _release(self, req, resp):
        with self._lock:
            self.core.release_estop()
        resp.success, resp.message = True, "e-stop released; waiting for a fresh chunk"
        return resp


def main(args=None) -> int:
    from vla_ros.ros.spin import spin_node

    return spin_node(ExecutorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
