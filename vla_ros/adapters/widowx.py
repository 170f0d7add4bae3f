"""WidowX 250 6DOF (Interbotix wx250s): end-effector targets -> joint commands through inverse kinematics.

The kinematics are the published product-of-exponentials model of the wx250s (home pose M and space screw
axes Slist, as in interbotix_xs_modules' mr_descriptions), joint limits from its URDF. IK is damped least
squares on the space Jacobian, warm-started from the previous solution. Streaming note: the xs_sdk's
`profile_velocity` (and `profile_acceleration`) must be lowered (e.g. 0.1 s / "time" profile) so that a
5 Hz stream of JointGroupCommands moves smoothly instead of finishing each move before the next arrives.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.adapters.config import AdapterConfig, GripperHysteresis
from vla_ros.core.chunking import Target
from vla_ros.core.transforms import pose_to_matrix

JOINT_NAMES = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"]
M_HOME = np.array([[1.0, 0.0, 0.0, 0.458325], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.36065], [0.0, 0.0, 0.0, 1.0]])
SLIST = np.array([
    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, -0.11065, 0.0, 0.0],
    [0.0, 1.0, 0.0, -0.36065, 0.0, 0.04975],
    [1.0, 0.0, 0.0, 0.0, 0.36065, 0.0],
    [0.0, 1.0, 0.0, -0.36065, 0.0, 0.29975],
    [1.0, 0.0, 0.0, 0.0, 0.36065, 0.0],
])  # rows: (omega, v) of each joint's screw axis in the base frame
LIMITS_RAD = np.radians([[-180, 180], [-108, 114], [-123, 92], [-180, 180], [-100, 123], [-180, 180]])


class IKError(RuntimeError):
    pass


def _exp_twist(S: np.ndarray, theta: float) -> np.ndarray:
    w, v = S[:3], S[3:]
    W = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
    R = np.eye(3) + np.sin(theta) * W + (1 - np.cos(theta)) * W @ W
    p = (np.eye(3) * theta + (1 - np.cos(theta)) * W + (theta - np.sin(theta)) * W @ W) @ v
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


def _adjoint(T: np.ndarray) -> np.ndarray:
    R, p = T[:3, :3], T[:3, 3]
    P = np.array([[0, -p[2], p[1]], [p[2], 0, -p[0]], [-p[1], p[0], 0]])
    out = np.zeros((6, 6))
    out[:3, :3], out[3:, 3:], out[3:, :3] = R, R, P @ R
    return out


def fk(q: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    for S, th in zip(SLIST, q):
        T = T @ _exp_twist(S, th)
    return T @ M_HOME


def space_jacobian(q: np.ndarray) -> np.ndarray:
    J = np.zeros((6, len(q)))
    T = np.eye(4)
    for i, (S, th) in enumerate(zip(SLIST, q)):
        J[:, i] = _adjoint(T) @ S
        T = T @ _exp_twist(S, th)
    return J


def ik(T_goal: np.ndarray, q0: np.ndarray | None = None, iters: int = 100, tol_m: float = 1e-4,
       tol_rad: float = 1e-3, damping: float = 0.02) -> np.ndarray:
    """Joint angles reaching T_goal (damped least squares, within joint limits) or IKError."""
    q = np.zeros(6) if q0 is None else np.array(q0, float)
    for _ in range(iters):
        T = fk(q)
        dp = T_goal[:3, 3] - T[:3, 3]
        dw = (Rotation.from_matrix(T_goal[:3, :3]) * Rotation.from_matrix(T[:3, :3]).inv()).as_rotvec()
        if np.linalg.norm(dp) < tol_m and np.linalg.norm(dw) < tol_rad:
            return q
        # space twist that moves the current pose toward the goal: (w, v) with v = dp - w x p
        err = np.concatenate([dw, dp - np.cross(dw, T[:3, 3])])
        J = space_jacobian(q)
        dq = J.T @ np.linalg.solve(J @ J.T + damping ** 2 * np.eye(6), err)
        q = np.clip(q + dq, LIMITS_RAD[:, 0], LIMITS_RAD[:, 1])
    T = fk(q)
    raise IKError(f"wx250s IK did not converge: position error {np.linalg.norm(T_goal[:3, 3] - T[:3, 3]):.4f} m")


class WidowXMapping:
    def __init__(self, cfg: AdapterConfig):
        self.cfg = cfg
        self.q = np.zeros(6)
        self.gripper = GripperHysteresis(cfg.close_below, cfg.open_above)

    def joint_command(self, target: Target) -> tuple[str, list[float]]:
        """(group name, 6 joint positions rad) for JointGroupCommand; raises IKError if unreachable."""
        self.q = ik(pose_to_matrix(target.position_m[0], target.quat_xyzw[0]), self.q)
        return self.cfg.widowx_group, self.q.tolist()

    def gripper_command(self, target: Target) -> float | None:
        event = self.gripper.update(float(target.gripper[0]))
        if event is None:
            return None
        return self.cfg.widowx_gripper_open if event == "open" else self.cfg.widowx_gripper_closed


def ee_pose_from_joints(names: list[str], positions: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The end-effector pose in the base frame (position m, quaternion xyzw) from a joint state, by joint name."""
    index = {n: i for i, n in enumerate(names)}
    lacking = [n for n in JOINT_NAMES if n not in index]
    if lacking:
        raise KeyError(f"joint state lacks the wx250s joints {lacking} (has {list(names)})")
    T = fk(np.array([positions[index[n]] for n in JOINT_NAMES], float))
    return T[:3, 3].copy(), Rotation.from_matrix(T[:3, :3]).as_quat()
