"""vla_ros/msg/ActionChunk <-> the core ActionChunk (validated shapes, reference names)."""
from __future__ import annotations

import numpy as np

from vla_ros.core.constants import MSG_TO_REFERENCE, REFERENCE_TO_MSG
from vla_ros.core.types import ActionChunk
from vla_ros.ros.msg_conversions import s_to_stamp, stamp_to_s


class ChunkMessageError(ValueError):
    pass


def chunk_to_msg(chunk: ActionChunk, frame_id: str | None = None):
    from geometry_msgs.msg import Pose

    from vla_ros.msg import ActionChunk as ActionChunkMsg

    msg = ActionChunkMsg()
    msg.header.stamp = s_to_stamp(chunk.stamp_s)
    msg.header.frame_id = frame_id if frame_id is not None else chunk.frame_id
    msg.sequence_id = int(chunk.seq)
    msg.policy_name, msg.method = chunk.policy_name, chunk.method
    msg.arm_names, msg.modalities = list(chunk.arm_names), list(chunk.modalities)
    msg.horizon, msg.dt_s = chunk.horizon, float(chunk.dt_s)
    msg.reference = REFERENCE_TO_MSG[chunk.reference]
    poses = []
    for p, q in zip(chunk.position_m.reshape(-1, 3), chunk.quat_xyzw.reshape(-1, 4)):
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = (float(v) for v in p)
        pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
        poses.append(pose)
    msg.poses = poses
    msg.gripper = [float(g) for g in chunk.gripper.reshape(-1)]
    msg.inference_latency_s = float(chunk.inference_latency_s)
    return msg


def msg_to_chunk(msg) -> ActionChunk:
    A, T = len(msg.arm_names), int(msg.horizon)
    if A == 0 or T == 0:
        raise ChunkMessageError(f"arm_names/horizon: empty chunk ({A} arms, horizon {T})")
    if len(msg.poses) != T * A or len(msg.gripper) != T * A:
        raise ChunkMessageError(f"poses/gripper: {len(msg.poses)} poses and {len(msg.gripper)} gripper values for "
                                f"horizon {T} x {A} arms")
    if msg.reference not in MSG_TO_REFERENCE:
        raise ChunkMessageError(f"reference: unknown value {msg.reference}")
    pos = np.array([[p.position.x, p.position.y, p.position.z] for p in msg.poses], float).reshape(T, A, 3)
    quat = np.array([[p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w] for p in msg.poses],
                    float).reshape(T, A, 4)
    return ActionChunk(stamp_s=stamp_to_s(msg.header.stamp), dt_s=msg.dt_s, frame_id=msg.header.frame_id,
                       arm_names=list(msg.arm_names), position_m=pos, quat_xyzw=quat,
                       gripper=np.asarray(msg.gripper, float).reshape(T, A), reference=MSG_TO_REFERENCE[msg.reference],
                       modalities=tuple(msg.modalities), method=msg.method, policy_name=msg.policy_name,
                       inference_latency_s=msg.inference_latency_s, seq=msg.sequence_id)
