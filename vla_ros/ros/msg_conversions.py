"""ROS message objects <-> the pure core functions (no cv_bridge, no sensor_msgs_py)."""
from __future__ import annotations

import numpy as np

from vla_ros.adapters.base import stamp_fields
from vla_ros.core.camera import Intrinsics, intrinsics_from_fields
from vla_ros.core.image import array_to_image_fields, image_to_array
from vla_ros.core.transforms import matrix_to_pose, pose_to_matrix


def stamp_to_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def s_to_stamp(t: float, stamp_type=None):
    if stamp_type is None:
        from builtin_interfaces.msg import Time as stamp_type
    return stamp_type(**stamp_fields(t))


def image_msg_to_array(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB, or (H, W) float32 metres for 16UC1/32FC1."""
    return image_to_array(msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data)


def array_to_image_msg(array: np.ndarray, encoding: str, stamp_s: float = 0.0, frame_id: str = ""):
    from sensor_msgs.msg import Image

    msg = Image(**array_to_image_fields(array, encoding))
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.header.frame_id = frame_id
    return msg


def camera_info_msg_to_intrinsics(msg) -> Intrinsics:
    return intrinsics_from_fields(msg.k, msg.d, msg.width, msg.height, msg.distortion_model)


def intrinsics_to_camera_info_msg(intr: Intrinsics, stamp_s: float = 0.0, frame_id: str = ""):
    from sensor_msgs.msg import CameraInfo

    P = np.zeros((3, 4))
    P[:3, :3] = intr.K
    msg = CameraInfo(width=intr.width, height=intr.height, distortion_model=intr.distortion_model or "plumb_bob",
                     d=[float(x) for x in intr.D], k=[float(x) for x in intr.K.ravel()],
                     r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], p=[float(x) for x in P.ravel()])
    msg.header.stamp = s_to_stamp(stamp_s)
    msg.header.frame_id = frame_id
    return msg


def array_to_pose_msg(pose7: np.ndarray):
    from geometry_msgs.msg import Pose

    msg = Pose()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in pose7[:3])
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = (float(v) for v in pose7[3:7])
    return msg


def transform_msg_to_matrix(transform) -> np.ndarray:
    """geometry_msgs/Transform -> 4x4."""
    t, q = transform.translation, transform.rotation
    return pose_to_matrix([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


def matrix_to_transform_msg(T: np.ndarray):
    from geometry_msgs.msg import Transform

    p, q = matrix_to_pose(T)
    msg = Transform()
    msg.translation.x, msg.translation.y, msg.translation.z = (float(v) for v in p)
    msg.rotation.x, msg.rotation.y, msg.rotation.z, msg.rotation.w = (float(v) for v in q)
    return msg
