"""Write rosbag2 files without ROS (rosbags): a robot-like recording for tests, examples and benchmarks."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_robot_bag(path: str | Path, cfg, seconds: float = 3.0, camera_hz: float = 10.0, storage: str = "mcap",
                    version: int = 9, size=(48, 64), instruction: str = "put the red block on the platform") -> Path:
    """Camera RGB + aligned 16UC1 depth + CameraInfo, joint states, end-effector pose, /tf_static, the instruction
    and the robot's commanded targets (a slow sweep) for `cfg` (a RuntimeConfig)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.LATEST)
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    h, w = size
    o = cfg.observation
    cam = o.cameras[0]

    def header(t, frame):
        return Header(stamp=Time(sec=int(t), nanosec=int(round((t - int(t)) * 1e9)) % 1_000_000_000), frame_id=frame)

    def pose(p, q):
        quat = T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])
        return T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
                                           orientation=quat)

    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    optical = "camera_color_optical_frame"
    f = 0.8 * w
    K = np.array([f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1], float)
    with Writer(Path(path), version=version, storage_plugin=plugin) as wr:
        def conn(topic, typ):
            return wr.add_connection(topic, typ, typestore=ts)

        c = {"rgb": conn(cam.rgb_topic, "sensor_msgs/msg/Image"),
             "info": conn(cam.info_topic, "sensor_msgs/msg/CameraInfo"),
             "joints": conn(o.joint_topic, "sensor_msgs/msg/JointState"),
             "instr": conn(o.instruction_topic, "std_msgs/msg/String"),
             "tf": conn("/tf_static", "tf2_msgs/msg/TFMessage"),
             "cmd": conn(cfg.adapter.command_topics[0], "geometry_msgs/msg/PoseStamped")}
        if cam.depth_topic:
            c["depth"] = conn(cam.depth_topic, "sensor_msgs/msg/Image")
        if o.ee_pose_topic:
            c["ee"] = conn(o.ee_pose_topic, "geometry_msgs/msg/PoseStamped")
        if o.gripper_topic:
            c["grip"] = conn(o.gripper_topic, "sensor_msgs/msg/JointState")

        def write(key, t, msg, typ):
            wr.write(c[key], int(t * 1e9), ts.serialize_cdr(msg, typ))

        t0 = 1_700_000_000.0
        write("instr", t0, T["std_msgs/msg/String"](data=instruction), "std_msgs/msg/String")
        tf = T["geometry_msgs/msg/TransformStamped"](
            header=header(t0, o.base_frame), child_frame_id=optical,
            transform=T["geometry_msgs/msg/Transform"](translation=T["geometry_msgs/msg/Vector3"](x=0.9, y=0.0, z=0.6),
                                                       rotation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=1.0, z=0.0,
                                                                                                   w=0.0)))
        write("tf", t0, T["tf2_msgs/msg/TFMessage"](transforms=[tf]), "tf2_msgs/msg/TFMessage")
        down = [1.0, 0.0, 0.0, 0.0]
        for k in range(int(seconds * camera_hz)):
            t = t0 + 0.05 + k / camera_hz
            target = [0.45 + 0.05 * np.sin(0.5 * (t - t0)), 0.0, 0.3]
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[10:20, (5 + k) % (w - 10):(15 + k) % (w - 10) or 10, 0] = 255
            write("rgb", t, T["sensor_msgs/msg/Image"](header=header(t, optical), height=h, width=w, encoding="rgb8",
                                                       is_bigendian=0, step=3 * w, data=rgb.reshape(-1)),
                  "sensor_msgs/msg/Image")
            if "depth" in c:
                d = np.full((h, w), 600, np.uint16).view(np.uint8).reshape(-1)
                write("depth", t + 0.003, T["sensor_msgs/msg/Image"](header=header(t, optical), height=h, width=w,
                                                                     encoding="16UC1", is_bigendian=0, step=2 * w,
                                                                     data=d), "sensor_msgs/msg/Image")
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header(t, optical), height=h, width=w, distortion_model="plumb_bob", d=np.zeros(5), k=K,
                r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            write("info", t, info, "sensor_msgs/msg/CameraInfo")
            for j in range(5):  # joints at 5x the camera rate
                tj = t - 0.04 + j * 0.02
                write("joints", tj, T["sensor_msgs/msg/JointState"](
                    header=header(tj, ""), name=list(o.joint_names), position=np.zeros(len(o.joint_names)),
                    velocity=np.zeros(0), effort=np.zeros(0)), "sensor_msgs/msg/JointState")
            if "ee" in c:
                ee = T["geometry_msgs/msg/PoseStamped"](header=header(t, o.base_frame), pose=pose(target, down))
                write("ee", t, ee, "geometry_msgs/msg/PoseStamped")
            if "grip" in c:  # open for the first half, closed after
                half = 0.5 * o.gripper_open_width_m * (1.0 if k < seconds * camera_hz / 2 else 0.0)
                write("grip", t, T["sensor_msgs/msg/JointState"](
                    header=header(t, ""), name=["finger_joint1", "finger_joint2"], position=np.array([half, half]),
                    velocity=np.zeros(0), effort=np.zeros(0)), "sensor_msgs/msg/JointState")
            write("cmd", t + 0.01, T["geometry_msgs/msg/PoseStamped"](header=header(t + 0.01, o.base_frame),
                                                                      pose=pose(target, down)),
                  "geometry_msgs/msg/PoseStamped")
    return Path(path)
