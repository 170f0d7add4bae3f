"""WidowX 250 6DOF (Interbotix wx250s): end-effector targets -> joint commands through inverse kinematics.

The kinematics are the published product-of-exponentials model of the wx250s (home pose M and space screw
axes Slist, as in interbotix_xs_modules' mr_descriptions), joint limits from its URDF. IK is damped least
squares on the space Jacobian, warm-started from the previous solution. Streaming note: the xs_sdk's
`profile_velocity` (and `profile_acceleration`) must be lowered (e.g. 0.1 s / "time" profile) so that a
5 Hz stream of JointGroupCommands moves smoothly instead of finishing each move before the next arrives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.adapters.base import DriverMessage, Recorded, RobotAdapter, SkipMessage, UnreachableTarget
from vla_ros.adapters.config import GripperHysteresis, HysteresisSettings
from vla_ros.adapters.registry import register
from vla_ros.core.chunking import Target
from vla_ros.core.config import check
from vla_ros.core.transforms import matrix_to_pose, pose_to_matrix

GROUP, SINGLE = "interbotix_xs_msgs/msg/JointGroupCommand", "interbotix_xs_msgs/msg/JointSingleCommand"
GRIPPER_JOINT = "gripper"
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


class IKError(UnreachableTarget):
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


@dataclass
class WidowXSettings(HysteresisSettings):
    """Args (besides the gripper hysteresis):
    group: JointGroupCommand group name of the arm's six joints.
    gripper_open / gripper_closed: JointSingleCommand values of the gripper joint.
    """

    group: str = "arm"
    gripper_open: float = 1.0
    gripper_closed: float = -1.0

    def __post_init__(self):
        super().__post_init__()
        for name in ("gripper_open", "gripper_closed"):
            check(math.isfinite(getattr(self, name)), name, getattr(self, name), "must be finite")
        check(self.gripper_open != self.gripper_closed, "gripper_open", self.gripper_open,
              "must differ from gripper_closed")
        check(bool(self.group.strip()), "group", self.group, "the arm's JointGroupCommand group name is required")


@register("widowx")
class WidowXAdapter(RobotAdapter):
    """One arm: JointGroupCommand joint targets (IK of the target pose) on command_topics[0], gripper open/close
    events as JointSingleCommand on gripper_topics[0]."""

    Settings = WidowXSettings
    rest_quat_xyzw = (0.0, 0.0, 0.0, 1.0)  # the wx250s tool pointing forward (its identity orientation)
    gripper_in_commands = True

    @classmethod
    def gripper_topics_needed(cls, n_arms: int) -> int:
        return 1  # the one JointSingleCommand topic

    def __init__(self, cfg):
        super().__init__(cfg)
        self.q = np.zeros(6)
        self.gripper = GripperHysteresis(self.settings.close_below, self.settings.open_above)

    def publications(self) -> list[tuple[str, str]]:
        return [(self.cfg.command_topics[0], GROUP), (self.cfg.gripper_topics[0], SINGLE)]

    def encode(self, target: Target, stamp_s: float, frame_id: str) -> list[DriverMessage]:
        """The joint group command, then a gripper command on an open/close event; UnreachableTarget (IKError)
        before either when IK fails (the gripper is not updated then)."""
        self.q = ik(pose_to_matrix(target.position_m[0], target.quat_xyzw[0]), self.q)
        out = [DriverMessage(self.cfg.command_topics[0], GROUP, {"name": self.settings.group, "cmd": self.q.tolist()})]
        event = self.gripper.update(float(target.gripper[0]))
        if event is not None:
            value = self.settings.gripper_open if event == "open" else self.settings.gripper_closed
            out.append(DriverMessage(self.cfg.gripper_topics[0], SINGLE, {"name": GRIPPER_JOINT, "cmd": float(value)}))
        return out

    def commanded_joints(self) -> np.ndarray:
        return self.q.copy()

    def recorded_topics(self, bag_topics: set[str], n_arms: int) -> dict[str, int]:
        topics = super().recorded_topics(bag_topics, n_arms)
        topics.update({t: a for a, t in enumerate(self.cfg.gripper_topics[:n_arms]) if t in bag_topics})
        return topics

    def decode(self, topic: str, arm: int, msg, t_ns: int) -> Recorded:
        if topic in self.cfg.command_topics:
            return Recorded(t_ns * 1e-9, self._pose_of_joints(msg))
        if msg.name != GRIPPER_JOINT:
            raise SkipMessage(f"joint {msg.name!r} is not the {GRIPPER_JOINT!r}")
        s = self.settings
        mid = 0.5 * (s.gripper_open + s.gripper_closed)
        is_open = (msg.cmd >= mid) == (s.gripper_open >= mid)
        return Recorded(t_ns * 1e-9, gripper=1.0 if is_open else 0.0)

    def _pose_of_joints(self, msg) -> np.ndarray:
        if msg.name != self.settings.group or len(msg.cmd) < 6:
            raise SkipMessage(f"group {msg.name!r} with {len(msg.cmd)} joints is not the config's "
                              f"adapter.settings.group {self.settings.group!r} (6 joints)")
        joints = np.asarray(msg.cmd[:6], dtype=np.float64)
        if not np.isfinite(joints).all():
            raise SkipMessage("non-finite joint target")
        p, q = matrix_to_pose(fk(joints))
        return np.concatenate([p, q])

    @classmethod
    def demo_target(cls, t_s: float, seconds: float, n_arms: int) -> Target:
        """Facing the target, tilted down, within the wx250s' reach."""
        p = np.array([0.30 + 0.05 * np.sin(0.5 * t_s), 0.08 * np.sin(0.4 * t_s), 0.20])
        q = Rotation.from_euler("zy", [np.arctan2(p[1], p[0]), 0.5]).as_quat()
        return Target(p[None], q[None], np.array([1.0 if t_s < seconds / 2 else 0.0]))


def ee_pose_from_joints(names: list[str], positions: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The end-effector pose in the base frame (position m, quaternion xyzw) from a joint state, by joint name."""
    index = {n: i for i, n in enumerate(names)}
    lacking = [n for n in JOINT_NAMES if n not in index]
    if lacking:
        raise KeyError(f"joint state lacks the wx250s joints {lacking} (has {list(names)})")
    T = fk(np.array([positions[index[n]] for n in JOINT_NAMES], float))
    return T[:3, 3].copy(), Rotation.from_matrix(T[:3, :3]).as_quat()
