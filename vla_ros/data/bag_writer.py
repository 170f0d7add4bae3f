"""Write rosbag2 files without ROS (rosbags): a robot-like recording for tests, examples and benchmarks.

Every robot's commands go out as its driver receives them, made by the same robot adapter the executor uses
(`vla_ros.adapters`), e.g. Franka PoseStamped targets; WidowX JointGroupCommand joint targets (wx250s IK of the
target pose) plus JointSingleCommand gripper events; AgileX Piper one PosCmd per arm in the adapter's units. The
robot types are registered from `interfaces/`, so their definitions are stored in the bag as `ros2 bag record`
stores them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.adapters.registry import adapter_class, make_adapter
from vla_ros.core.chunking import Target

INTERFACES_DIR = Path(__file__).resolve().parents[2] / "interfaces"
T0_S = 1_700_000_000.0  # bag start (instruction, /tf_static)
FIRST_FRAME_S = 0.05  # first camera frame after T0_S
COMMAND_LAG_S = 0.01  # each command is sent this long after its camera frame
OPTICAL = "camera_color_optical_frame"


def sweep_target(cfg, t_s: float, seconds: float) -> Target:
    """The writer's commanded target of every arm `t_s` seconds after T0_S in a recording `seconds` long: the
    robot adapter's `demo_target` sweep."""
    return adapter_class(cfg.adapter.robot).demo_target(t_s, seconds, len(cfg.executor.arm_names))


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


def build_message(ts, type_name: str, fields: dict):
    """A rosbags message of `type_name` from nested plain fields (as a robot adapter's DriverMessage has them);
    numeric sequences become numpy arrays of the field's type."""
    from rosbags.interfaces import Nodetype

    kwargs = {}
    for name, (node, detail) in ts.fielddefs[type_name][1]:
        if name not in fields:
            raise KeyError(f"{type_name}: field {name!r} missing from {sorted(fields)}")
        value = fields[name]
        if node == Nodetype.NAME:
            value = build_message(ts, detail, value)
        elif node in (Nodetype.ARRAY, Nodetype.SEQUENCE) and detail[0][0] == Nodetype.BASE and \
                detail[0][1][0] != "string":
            value = np.asarray(value, np.dtype(detail[0][1][0]))
        kwargs[name] = value
    return ts.types[type_name](**kwargs)


class _Commands:
    """The robot's command messages for a target, made by the robot adapter the executor uses (its action goals,
    e.g. Franka's gripper, are not topics and are not recorded)."""

    def __init__(self, cfg, out: _Out):
        self.cfg, self.out = cfg, out
        self.adapter = make_adapter(cfg.adapter)
        self.joints = np.zeros(len(cfg.observation.joint_names))  # what the joint states report

    def write(self, t_s: float, target: Target) -> None:
        for m in self.adapter.encode(target, t_s, self.cfg.observation.base_frame):
            if not m.is_goal:
                self.out.write(m.name, t_s, build_message(self.out.ts, m.type, m.fields))
        q = self.adapter.commanded_joints()
        if q is not None:
            self.joints[:len(q)] = q


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
