"""Pose math on plain arrays (scipy Rotation underneath). Quaternions are xyzw; T_a_b is 4x4 homogeneous."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def pose_to_matrix(position_m: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """(3,), (4,) -> (4, 4) homogeneous transform."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(np.asarray(quat_xyzw, dtype=float)).as_matrix()
    T[:3, 3] = position_m
    return T


def matrix_to_pose(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) -> position (3,), quaternion xyzw (4,) with w >= 0."""
    q = Rotation.from_matrix(np.asarray(T)[:3, :3]).as_quat()
    return np.asarray(T)[:3, 3].copy(), canonical_quat(q)


def canonical_quat(q: np.ndarray) -> np.ndarray:
    """Unit quaternion(s) with non-negative w (q and -q are the same rotation)."""
    q = np.asarray(q, dtype=float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0, -q, q)


def invert(T: np.ndarray) -> np.ndarray:
    R, t = T[:3, :3], T[:3, 3]
    out = np.eye(4)
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ t
    return out


def rotvec_to_quat(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors (rad) -> (..., 4) quaternions xyzw."""
    rv = np.asarray(rotvec, dtype=float)
    return canonical_quat(Rotation.from_rotvec(rv.reshape(-1, 3)).as_quat()).reshape(*rv.shape[:-1], 4)


def quat_angle_rad(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Angle of the rotation between two (batches of) quaternions, in [0, pi]."""
    d = np.abs(np.sum(canonical_quat(q1) * canonical_quat(q2), axis=-1))
    return 2.0 * np.arccos(np.clip(d, 0.0, 1.0))


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: float) -> np.ndarray:
    """Spherical interpolation from unit quaternion q0 (alpha=0) to q1 (alpha=1), shortest path."""
    q0, q1 = np.asarray(q0, dtype=float), np.asarray(q1, dtype=float)
    a = float(np.clip(alpha, 0.0, 1.0))
    d = float(np.dot(q0, q1))
    if d < 0.0:
        q1, d = -q1, -d
    if d > 0.9995:  # nearly parallel: linear interpolation is exact to float precision
        q = q0 + a * (q1 - q0)
    else:
        theta = np.arccos(d)
        q = (np.sin((1 - a) * theta) * q0 + np.sin(a * theta) * q1) / np.sin(theta)
    return canonical_quat(q)


def quat_to_euler_xyz(quat_xyzw: np.ndarray) -> np.ndarray:
    return Rotation.from_quat(quat_xyzw).as_euler("xyz")
