"""Write rosbag2 files without ROS (rosbags): a robot-like recording for tests, examples and benchmarks.

Every robot's commands go out as its driver receives them, on `cfg.adapter.command_topics`, made by the same
adapter mappings the executor uses: Franka PoseStamped targets; WidowX JointGroupCommand joint targets (wx250s
IK of the target pose) plus JointSingleCommand gripper events on the gripper topic; AgileX Piper one PosCmd per
arm in the adapter's units. The robot types are registered from `interfaces/`, so their definitions are stored
in the bag as `ros2 bag record` stores them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.core.chunking import Target
from vla_ros.core.constants import TOOL_DOWN_QUAT_XYZW

INTERFACES_DIR = Path(__file__).resolve().parents[2] / "interfaces"
T0_S = 1_700_000_000.0  # bag start (instruction, /tf_static)
FIRST_FRAME_S = 0.05  # first camera frame after T0_S
COMMAND_LAG_S = 0.01  # each command is sent this long after its camera frame
OPTICAL = "camera_color_optical_frame"


def sweep_target(cfg, t_s: float, seconds: float) -> Target:
    """The writer's commanded target of every arm `t_s` seconds after T0_S in a recording `seconds` long: a slow
    sweep; the (first) gripper closes half way through (a second arm's stays at 0.75 open)."""
    s, c = np.sin(0.5 * t_s), np.cos(0.5 * t_s)
    closing = 1.0 if t_s < seconds / 2 else 0.0
    if cfg.adapter.robot == "widowx":
        p = np.array([0.30 + 0.05 * s, 0.08 * np.sin(0.4 * t_s), 0.20])
        q = Rotation.from_euler("zy", [np.arctan2(p[1], p[0]), 0.5]).as_quat()  # facing the target, tilted down
        return Target(p[None], q[None], np.array([closing]))
    if cfg.adapter.robot == "piper":
        pos = np.array([[0.30 + 0.05 * s, 0.25, 0.25], [0.30, -0.25 + 0.04 * s, 0.20 + 0.03 * c]])
        left = (Rotation.from_euler("z", 0.2 * s) * Rotation.from_quat(TOOL_DOWN_QUAT_XYZW)).as_quat()
        return Target(pos, np.stack([left, TOOL_DOWN_QUAT_XYZW]), np.array([closing, 0.75]))
    n = len(cfg.executor.arm_names)
    pos = np.tile([0.45 + 0.05 * s, 0.0, 0.3], (n, 1))
    return Target(pos, np.tile(TOOL_DOWN_QUAT_XYZW, (n, 1)), np.full(n, closing))


class _Out:
    """A rosbags Writer with the typestore and one connection per topic (made on first write)."""

    def __init__(self, wr, ts):
        self.wr, self.ts, self.T, self.conns = wr, ts, ts.types, {}

    def write(self, topic: str, t_s: float, msg) -> None:
        typ = msg.__msgtype__
        if topic not in self.conns:
            self.conns[topic] = self.wr.add_connection(topic, typ, typestore=self.ts)
        self.wr.write(self.conns[topic], int(round(t_s * 1e9)), self.ts.serialize_cdr(msg, typ))

    def header(self, t_s: float, frame: str):
        sec = int(t_s)
        nsec = min(int(round((t_s - sec) * 1e9)), 999_999_999)
        return self.T["std_msgs/msg/Header"](stamp=self.T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                             frame_id=frame)

    def pose(self, p, q):
        T = self.T
        return T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
                                           orientation=T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2],
                                                                                         w=q[3]))

    def pose_stamped(self, t_s: float, frame: str, p, q):
        return self.T["geometry_msgs/msg/PoseStamped"](header=self.header(t_s, frame), pose=self.pose(p, q))

    def image(self, t_s: float, array: np.ndarray, encoding: str):
        h, w = array.shape[:2]
        return self.T["sensor_msgs/msg/Image"](header=self.header(t_s, OPTICAL), height=h, width=w, encoding=encoding,
                                               is_bigendian=0, step=array.itemsize * array[0].size,
                                               data=array.view(np.uint8).reshape(-1))

    def camera_info(self, t_s: float, h: int, w: int):
        f = 0.8 * w
        K = np.array([f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1], float)
        roi = self.T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.T["sensor_msgs/msg/CameraInfo"](header=self.header(t_s, OPTICAL), height=h, width=w,
                                                    distortion_model="plumb_bob", d=np.zeros(5), k=K,
                                                    r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
                                                    roi=roi)

    def joint_state(self, t_s: float, names, positions):
        return self.T["sensor_msgs/msg/JointState"](header=self.header(t_s, ""), name=list(names),
                                                    position=np.asarray(positions, np.float64),
                                                    velocity=np.zeros(0), effort=np.zeros(0))

    def camera_tf(self, t_s: float, base_frame: str):
        T = self.T
        tf = T["geometry_msgs/msg/TransformStamped"](
            header=self.header(t_s, base_frame), child_frame_id=OPTICAL,
            transform=T["geometry_msgs/msg/Transform"](translation=T["geometry_msgs/msg/Vector3"](x=0.9, y=0.0, z=0.6),
                                                       rotation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=1.0, z=0.0,
                                                                                                   w=0.0)))
        return T["tf2_msgs/msg/TFMessage"](transforms=[tf])


class _Commands:
    """The robot's command messages for a target, through the executor's adapter mappings."""

    def __init__(self, cfg, out: _Out):
        from vla_ros.adapters.piper import PiperMapping
        from vla_ros.adapters.widowx import WidowXMapping

        self.cfg, self.out, self.ad = cfg, out, cfg.adapter
        mappings = {"widowx": WidowXMapping, "piper": PiperMapping}
        self.mapping = mappings[self.ad.robot](self.ad) if self.ad.robot in mappings else None
        self.joints = np.zeros(len(cfg.observation.joint_names))  # what the joint states report

    def write(self, t_s: float, target: Target) -> None:
        T, out, topics = self.out.T, self.out, self.ad.command_topics
        if self.ad.robot == "franka":
            for a, (p, q) in enumerate(zip(target.position_m, target.quat_xyzw)):
                out.write(topics[a], t_s, out.pose_stamped(t_s, self.cfg.observation.base_frame, p, q))
        elif self.ad.robot == "widowx":
            group, q = self.mapping.joint_command(target)
            out.write(topics[0], t_s, T["interbotix_xs_msgs/msg/JointGroupCommand"](
                name=group, cmd=np.asarray(q, np.float32)))
            self.joints[:len(q)] = q
            g = self.mapping.gripper_command(target)  # open/close events only, as the live adapter sends them
            if g is not None:
                out.write(self.ad.gripper_topics[0], t_s, T["interbotix_xs_msgs/msg/JointSingleCommand"](
                    name="gripper", cmd=float(g)))
        else:
            for a, fields in enumerate(self.mapping.pos_cmds(target)):
                out.write(topics[a], t_s, T["piper_msgs/msg/PosCmd"](**fields))


def _typestore():
    from vla_ros.data.bags import typestore

    return typestore([INTERFACES_DIR] if INTERFACES_DIR.is_dir() else [])


def write_robot_bag(path: str | Path, cfg, seconds: float = 3.0, camera_hz: float = 10.0, storage: str = "mcap",
                    version: int = 9, size=(48, 64), instruction: str = "put the red block on the platform") -> Path:
    """Camera RGB (+ aligned 16UC1 depth) + CameraInfo, joint states (5x the camera rate), the end-effector pose
    and gripper state where the config has their topics, /tf_static, the instruction and the robot's commands
    (`sweep_target` at each frame's stamp + COMMAND_LAG_S) for `cfg` (a RuntimeConfig)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    h, w = size
    o = cfg.observation
    cam = o.cameras[0]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(Path(path), version=version, storage_plugin=plugin) as wr:
        out = _Out(wr, _typestore())
        commands = _Commands(cfg, out)
        out.write(o.instruction_topic, T0_S, out.T["std_msgs/msg/String"](data=instruction))
        out.write("/tf_static", T0_S, out.camera_tf(T0_S, o.base_frame))
        depth = np.full((h, w), 600, np.uint16)  # mm
        for k in range(int(seconds * camera_hz)):
            t = T0_S + FIRST_FRAME_S + k / camera_hz
            target = sweep_target(cfg, t + COMMAND_LAG_S - T0_S, seconds)
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[10:20, (5 + k) % (w - 10):(15 + k) % (w - 10) or 10, 0] = 255
            out.write(cam.rgb_topic, t, out.image(t, rgb, "rgb8"))
            if cam.depth_topic:
                out.write(cam.depth_topic, t + 0.003, out.image(t, depth, "16UC1"))
            out.write(cam.info_topic, t, out.camera_info(t, h, w))
            for j in range(5):
                tj = t - 0.04 + j * 0.02
                out.write(o.joint_topic, tj, out.joint_state(tj, o.joint_names, commands.joints))
            if o.ee_pose_topic:  # one PoseStamped: the first arm's measured pose (it tracks the target)
                out.write(o.ee_pose_topic, t, out.pose_stamped(t, o.base_frame, target.position_m[0],
                                                               target.quat_xyzw[0]))
            if o.gripper_topic:  # finger positions, their sum is the opening
                half = 0.5 * o.gripper_open_width_m * float(target.gripper[0])
                out.write(o.gripper_topic, t, out.joint_state(t, ["finger_joint1", "finger_joint2"], [half, half]))
            commands.write(t + COMMAND_LAG_S, target)
    return Path(path)
