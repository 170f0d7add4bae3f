"""The 7-number action per arm that policies predict and datasets store, and its ActionChunk form.

Action = [x, y, z (m), rx, ry, rz (rotation vector, rad), gripper (0 closed .. 1 open)]. The rotation is
relative to a reference orientation R_ref (e.g. tool pointing down): R_target = R(r) @ R_ref, which keeps
tabletop rotations small and continuous (a raw rotation vector jumps near 180 degrees).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.core.transforms import canonical_quat


def actions_to_poses(actions: np.ndarray, ref_quat_xyzw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., 7) actions -> positions (..., 3), quaternions xyzw (..., 4), gripper (...) in [0, 1]."""
    a = np.asarray(actions, dtype=np.float64)
    lead = a.shape[:-1]
    rel = Rotation.from_rotvec(a.reshape(-1, 7)[:, 3:6])
    quat = canonical_quat((rel * Rotation.from_quat(ref_quat_xyzw)).as_quat()).reshape(*lead, 4)
    return a[..., :3].copy(), quat, np.clip(a[..., 6], 0.0, 1.0)


def poses_to_actions(position_m: np.ndarray, quat_xyzw: np.ndarray, gripper: np.ndarray, ref_quat_xyzw) -> np.ndarray:
    """Inverse of actions_to_poses."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    lead = q.shape[:-1]
    rel = Rotation.from_quat(q.reshape(-1, 4)) * Rotation.from_quat(ref_quat_xyzw).inv()
    rv = rel.as_rotvec().reshape(*lead, 3)
    return np.concatenate([np.asarray(position_m, np.float64), rv, np.asarray(gripper, np.float64)[..., None]], -1)
