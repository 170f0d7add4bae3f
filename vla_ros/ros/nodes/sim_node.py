"""Simulator node: the MuJoCo tabletop (vla_ros/sim) behind the topics a real Franka + RealSense publish, and
the commands the Franka adapter sends. A thin shell: the physics, rendering and tasks are in vla_ros/sim.

Publishes (stamped with this node's clock, like drivers): RGB rgb8 on /camera/color/image_raw, aligned depth
(16UC1 mm or 32FC1 m) on /camera/aligned_depth_to_color/image_raw, CameraInfo, /joint_states (the 7 joints of a
Franka whose TCP is at the gripper), /franka_gripper/joint_states (finger positions), /current_pose
(PoseStamped, base frame), /tf_static base -> camera_color_optical_frame (re-sent when an episode moves the
camera), /tf base -> fr3_hand_tcp, and the episode's instruction (latched). Consumes /target_pose (PoseStamped
in the base frame) and the franka_msgs Move/Grasp actions on /franka_gripper/{move,grasp}. Simulated time
advances by 1/rate_hz per timer tick, i.e. in real time when the machine keeps up.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String

from vla_ros.core.config import check, check_range
from vla_ros.core.constants import UNIT_QUAT_TOL
from vla_ros.core.observation_feed import pose_fields_to_array
from vla_ros.ros import qos
from vla_ros.ros.msg_conversions import (
    array_to_image_msg,
    array_to_pose_msg,
    intrinsics_to_camera_info_msg,
    matrix_to_transform_msg,
    s_to_stamp,
)
from vla_ros.ros.tf import STATIC_QOS


@dataclass
class SimNodeConfig:
    """Args:
    rate_hz: simulation ticks per second (each advances the physics by 1/rate_hz; joints, pose, tf published).
    camera_hz: RGB, depth and CameraInfo rate. depth_encoding: "16UC1" (mm) or "32FC1" (m).
    width / height: image size. base_frame / camera_frame / tcp_frame: tf frame names.
    seed / task: the first episode ('' = chosen by the seed). publish_instruction: latch the episode's instruction.
    """

    rate_hz: float = 50.0
    camera_hz: float = 10.0
    depth_encoding: str = "16UC1"
    width: int = 128
    height: int = 96
    base_frame: str = "base"
    camera_frame: str = "camera_color_optical_frame"
    tcp_frame: str = "fr3_hand_tcp"
    seed: int = 0
    task: str = ""
    publish_instruction: bool = True
    rgb_topic: str = "/camera/color/image_raw"
    depth_topic: str = "/camera/aligned_depth_to_color/image_raw"
    info_topic: str = "/camera/color/camera_info"
    joint_topic: str = "/joint_states"
    gripper_topic: str = "/franka_gripper/joint_states"
    pose_topic: str = "/current_pose"
    target_topic: str = "/target_pose"
    gripper_action_ns: str = "/franka_gripper"
    instruction_topic: str = "/vla/instruction"

    def __post_init__(self):
        check_range("rate_hz", self.rate_hz, 1.0, 1000.0)
        check_range("camera_hz", self.camera_hz, 0.1, self.rate_hz)
        check(self.depth_encoding in ("16UC1", "32FC1"), "depth_encoding", self.depth_encoding,
              "expected 16UC1 (mm) or 32FC1 (m)")


class SimNode(Node):
    """All MuJoCo work (physics, rendering, resets) happens on one worker thread (a GL context belongs to one
    thread); ROS callbacks only hand commands to it."""

    def __init__(self, config: SimNodeConfig | None = None, **kwargs):
        super().__init__("vla_sim", **kwargs)
        from vla_ros.core.config import override
        from vla_ros.sim.franka import FINGER_NAMES, JOINT_NAMES

        cfg = config or SimNodeConfig()
        d = ParameterDescriptor
        self.declare_parameter("rate_hz", cfg.rate_hz, d(description="simulation ticks per second", read_only=True))
        self.declare_parameter("camera_hz", cfg.camera_hz, d(description="camera rate", read_only=True))
        self.declare_parameter("depth_encoding", cfg.depth_encoding,
                               d(description="16UC1 (mm) or 32FC1 (m)", read_only=True))
        self.declare_parameter("seed", cfg.seed, d(description="first episode's seed", read_only=True))
        self.declare_parameter("task", cfg.task, d(description="first episode's task ('' = by seed)", read_only=True))
        over = {k: self.get_parameter(k).value for k in ("rate_hz", "camera_hz", "depth_encoding", "seed", "task")}
        self.cfg = cfg = override(cfg, over)
        self.joint_names, self.finger_names = JOINT_NAMES, FINGER_NAMES
        self.rgb_pub = self.create_publisher(Image, cfg.rgb_topic, qos.SENSOR)
        self.depth_pub = self.create_publisher(Image, cfg.depth_topic, qos.SENSOR)
        self.info_pub = self.create_publisher(CameraInfo, cfg.info_topic, qos.SENSOR)
        self.joint_pub = self.create_publisher(JointState, cfg.joint_topic, qos.SENSOR)
        self.finger_pub = self.create_publisher(JointState, cfg.gripper_topic, qos.SENSOR)
        self.pose_pub = self.create_publisher(PoseStamped, cfg.pose_topic, qos.SENSOR)
        self.instr_pub = self.create_publisher(String, cfg.instruction_topic, qos.LATCHED)
        from tf2_msgs.msg import TFMessage

        self._TFMessage = TFMessage
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", STATIC_QOS)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", qos.RELIABLE)
        group = ReentrantCallbackGroup()
        self.create_subscription(PoseStamped, cfg.target_topic, self._on_target, qos.RELIABLE, callback_group=group)
        self.counters = {"ticks": 0, "frames": 0, "targets": 0, "rejected_targets": 0, "gripper_goals": 0,
                         "late_ticks": 0}
        self.lock = threading.Lock()  # guards the hand-over fields below
        self._target: tuple[np.ndarray, np.ndarray] | None = None
        self._width: float | None = None
        self._gripper_waiters: list[tuple[float, threading.Event]] = []
        self._reset_req: list = []
        self.episode_success = False
        self.episode_task, self.instruction, self.sim_time_s = "", "", 0.0
        self.last_frame: np.ndarray | None = None
        self.gripper_width_m = 0.0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._start_gripper_servers(group)
        self._thread = threading.Thread(target=self._run, name="vla_sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=60.0) or self._error is not None:
            raise RuntimeError(f"simulator failed to start: {self._error}")
        self.get_logger().info(f"sim at {cfg.rate_hz} Hz, camera {cfg.camera_hz} Hz {cfg.width}x{cfg.height}, "
                               f"depth {cfg.depth_encoding}")

    # --- episodes ---------------------------------------------------------------------------------------
    def reset(self, seed: int, task: str | None = None, timeout_s: float = 30.0) -> str:
        """Starts a new episode on the sim thread; returns its instruction (also latched on the instruction
        topic) once the first frame of it is being published."""
        done = threading.Event()
        req = [seed, task, done, None]
        with self.lock:
            self._reset_req.append(req)
        if not done.wait(timeout=timeout_s):
            raise TimeoutError(f"sim reset(seed={seed}, task={task!r}) did not finish in {timeout_s} s")
        if isinstance(req[3], BaseException):
            raise req[3]
        return req[3]

    def success(self) -> bool:
        """Whether the current episode's task has succeeded at any tick so far."""
        return self.episode_success

    def _do_reset(self, env, seed: int, task: str | None) -> str:
        env.reset(seed, task)
        t = TransformStamped()
        t.header.stamp, t.header.frame_id = self.get_clock().now().to_msg(), self.cfg.base_frame
        t.child_frame_id, t.transform = self.cfg.camera_frame, matrix_to_transform_msg(env.T_base_camera())
        self.tf_static_pub.publish(self._TFMessage(transforms=[t]))
        if self.cfg.publish_instruction:
            self.instr_pub.publish(String(data=env.instruction))
        with self.lock:
            self._target, self._width = None, None
        self.episode_success, self.episode_task, self.instruction = False, env.episode.task, env.instruction
        self._next_frame_t = 0.0
        self.get_logger().info(f"episode seed={seed} task={env.episode.task}: {env.instruction!r}")
        return env.instruction

    # --- commands -----------------------------------------------------------------------------------------
    def _on_target(self, msg: PoseStamped) -> None:
        try:
            frame = msg.header.frame_id
            if frame and frame != self.cfg.base_frame:
                raise ValueError(f"frame_id {frame!r} is not the base frame {self.cfg.base_frame!r}")
            p = pose_fields_to_array(msg.pose)
            if not np.all(np.isfinite(p)):
                raise ValueError(f"pose is not finite: {p.tolist()}")
            norm = float(np.linalg.norm(p[3:]))
            if abs(norm - 1.0) > UNIT_QUAT_TOL:
                raise ValueError(f"orientation is not a unit quaternion (norm {norm:.4f})")
            with self.lock:
                self._target = (p[:3], p[3:] / norm)
            self.counters["targets"] += 1
        except ValueError as exc:
            self.counters["rejected_targets"] += 1
            self.get_logger().warning(f"{self.cfg.target_topic}: rejected target: {exc}", throttle_duration_sec=2.0)

    def _start_gripper_servers(self, group) -> None:
        try:
            from franka_msgs.action import Grasp, Move
        except ImportError:
            self.get_logger().warning("franka_msgs is not importable: no gripper action servers (build it from "
                                      "interfaces/franka_msgs)")
            return
        from rclpy.action import ActionServer

        ns = self.cfg.gripper_action_ns
        self._servers = [ActionServer(self, Move, f"{ns}/move", self._gripper_execute(Move), callback_group=group),
                         ActionServer(self, Grasp, f"{ns}/grasp", self._gripper_execute(Grasp), callback_group=group)]

    def _gripper_execute(self, action):
        def execute(handle):
            width = float(handle.request.width)
            done = threading.Event()
            with self.lock:
                self._width = width
                self._gripper_waiters.append((self.sim_time_s, done))
            self.counters["gripper_goals"] += 1
            done.wait(timeout=3.0)  # until the fingers stop (or 3 s)
            current = self.gripper_width_m
            handle.succeed()
            result = action.Result(success=True)
            if hasattr(handle.request, "epsilon"):  # Grasp: success = an object held at width +- epsilon
                eps = handle.request.epsilon
                result.success = bool(width - eps.inner <= current <= width + eps.outer or current > width + 1e-3)
            return result
        return execute

    # --- the sim thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        from vla_ros.sim.env import SimConfig, SimEnv

        cfg = self.cfg
        dt = 1.0 / cfg.rate_hz
        try:
            env = SimEnv(SimConfig(width=cfg.width, height=cfg.height, dt_s=dt))
            self._do_reset(env, cfg.seed, cfg.task or None)
        except BaseException as exc:  # reported by the constructor
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        next_t = time.monotonic()
        try:
            while not self._stop.is_set():
                self._tick(env, dt)
                next_t += dt
                delay = next_t - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                elif delay < -0.25:  # cannot keep up: run slower than real time rather than burst
                    self.counters["late_ticks"] += 1
                    next_t = time.monotonic()
        finally:
            env.close()

    def _tick(self, env, dt: float) -> None:
        with self.lock:
            resets, self._reset_req = self._reset_req, []
            target, width = self._target, self._width
            self._width = None
        for req in resets:
            try:
                req[3] = self._do_reset(env, req[0], req[1])
            except Exception as exc:
                req[3] = exc
            target = None
        if target is not None:
            env.set_target(target[0], target[1])
        if width is not None:
            env.set_gripper_width(width)
        env.step(env.target_pos, None, None, dt_s=dt, render=False)
        self.episode_success = bool(env.ever_succeeded)
        self.sim_time_s = env.time_s
        self.gripper_width_m = env.gripper_width_m()
        finger_speed = float(np.abs(env.data.qvel[[env.model.joint(f"finger_joint_{s}").dofadr[0]
                                                   for s in ("left", "right")]]).max())
        with self.lock:
            still = []
            for t0, ev in self._gripper_waiters:
                if env.time_s - t0 > 0.1 and finger_speed < 2e-3:
                    ev.set()
                else:
                    still.append((t0, ev))
            self._gripper_waiters = still
        now = self.get_clock().now().nanoseconds * 1e-9
        stamp = s_to_stamp(now)
        fingers = env.finger_positions_m()  # merged into /joint_states too, as joint_state_publisher does
        self.joint_pub.publish(self._joint_state(self.joint_names + self.finger_names, np.r_[env.q, fingers], stamp))
        self.finger_pub.publish(self._joint_state(self.finger_names, fingers, stamp))
        pose = env.ee_pose()
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.cfg.base_frame
        msg.pose = array_to_pose_msg(pose)
        self.pose_pub.publish(msg)
        tf = TransformStamped()
        tf.header.stamp, tf.header.frame_id, tf.child_frame_id = stamp, self.cfg.base_frame, self.cfg.tcp_frame
        tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = msg.pose.position.x, \
            msg.pose.position.y, msg.pose.position.z
        tf.transform.rotation = msg.pose.orientation
        self.tf_pub.publish(self._TFMessage(transforms=[tf]))
        self.counters["ticks"] += 1
        if env.time_s + 1e-9 >= self._next_frame_t:
            self._next_frame_t = env.time_s + 1.0 / self.cfg.camera_hz
            obs = env.observation()
            cam, frame = obs.cameras[0], self.cfg.camera_frame
            self.rgb_pub.publish(array_to_image_msg(cam.rgb, "rgb8", now, frame))
            self.depth_pub.publish(array_to_image_msg(cam.depth_m, self.cfg.depth_encoding, now, frame))
            self.info_pub.publish(intrinsics_to_camera_info_msg(env.camera.intrinsics(), now, frame))
            self.last_frame = cam.rgb
            self.counters["frames"] += 1
        for req in resets:  # the new episode's first frame is out (or the reset failed): wake the caller
            req[2].set()

    @staticmethod
    def _joint_state(names, positions, stamp) -> JointState:
        js = JointState(name=list(names), position=[float(v) for v in positions])
        js.header.stamp = stamp
        return js

    def destroy_node(self):
        self._stop.set()
        self._thread.join(timeout=5.0)
        with self.lock:
            for _, ev in self._gripper_waiters:
                ev.set()
        return super().destroy_node()


def main(args=None) -> int:
    from vla_ros.ros.spin import spin_node

    return spin_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
