"""Franka (FR3/Panda) kinematics: forward kinematics to the hand's TCP and a damped least-squares IK.

The simulator drives a floating gripper; its `/joint_states` are those of a Franka whose TCP reaches that gripper
pose, so the policy's proprio has the same meaning (7 joint angles, rad) as on the real robot. Kinematic
parameters are Franka's published modified Denavit-Hartenberg table; the TCP is 0.1034 m past the flange,
rotated -45 degrees about z (the hand's mounting).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

JOINT_NAMES = [f"fr3_joint{i}" for i in range(1, 8)]
FINGER_NAMES = ["fr3_finger_joint1", "fr3_finger_joint2"]
# (a, d, alpha) per joint, modified DH (Craig): T_i = RotX(alpha) TransX(a) RotZ(q) TransZ(d)
DH = np.array([[0.0, 0.333, 0.0], [0.0, 0.0, -np.pi / 2], [0.0, 0.316, np.pi / 2], [0.0825, 0.0, np.pi / 2],
               [-0.0825, 0.384, -np.pi / 2], [0.0, 0.0, np.pi / 2], [0.088, 0.0, np.pi / 2]])
FLANGE_D_M, TCP_D_M = 0.107, 0.1034
Q_MIN = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
Q_MAX = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
Q_HOME = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])


def _dh(a: float, d: float, alpha: float, q: float) -> np.ndarray:
    ca, sa, cq, sq = np.cos(alpha), np.sin(alpha), np.cos(q), np.sin(q)
    return np.array([[cq, -sq, 0.0, a], [sq * ca, cq * ca, -sa, -d * sa], [sq * sa, cq * sa, ca, d * ca],
                     [0.0, 0.0, 0.0, 1.0]])


_T_FLANGE_TCP = np.eye(4)
_T_FLANGE_TCP[:3, :3] = Rotation.from_euler("z", -np.pi / 4).as_matrix()
_T_FLANGE_TCP[2, 3] = TCP_D_M


def forward(q: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """T_base_tcp (4, 4) and the 7 joint frames (joint i's axis is its frame's z)."""
    T, frames = np.eye(4), []
    for (a, d, alpha), qi in zip(DH, q, strict=True):
        T = T @ _dh(a, d, alpha, qi)
        frames.append(T)
    flange = T.copy()
    flange[:3, 3] += T[:3, 2] * FLANGE_D_M
    return flange @ _T_FLANGE_TCP, frames


def jacobian(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """T_base_tcp and the (6, 7) geometric Jacobian [linear; angular] of the TCP in the base frame."""
    T, frames = forward(q)
    p = T[:3, 3]
    J = np.zeros((6, 7))
    for i, F in enumerate(frames):
        z = F[:3, 2]
        J[:3, i] = np.cross(z, p - F[:3, 3])
        J[3:, i] = z
    return T, J


def inverse(T_target: np.ndarray, q0: np.ndarray | None = None, iters: int = 50, tol: float = 1e-4,
            damping: float = 1e-2) -> tuple[np.ndarray, float]:
    """Joint angles reaching T_target from the seed q0 (default Q_HOME), pulled towards Q_HOME in the null
    space; returns (q, residual) where residual is the final position error (m) + orientation error (rad)."""
    q = np.array(Q_HOME if q0 is None else q0, dtype=float)
    err_norm = np.inf
    for _ in range(iters):
        T, J = jacobian(q)
        err = np.r_[T_target[:3, 3] - T[:3, 3],
                    Rotation.from_matrix(T_target[:3, :3] @ T[:3, :3].T).as_rotvec()]
        err_norm = float(np.linalg.norm(err[:3]) + np.linalg.norm(err[3:]))
        if err_norm < tol:
            break
        JJt = J @ J.T + damping**2 * np.eye(6)
        J_pinv = J.T @ np.linalg.solve(JJt, np.eye(6))
        dq = J_pinv @ err + (np.eye(7) - J_pinv @ J) @ (0.02 * (Q_HOME - q))
        q = np.clip(q + dq, Q_MIN, Q_MAX)
    return q, err_norm
