"""Franka: PoseStamped targets in the base frame for a Cartesian impedance controller (CRISP target_pose /
equilibrium_pose style), gripper through franka_gripper's Move (open) and Grasp (close) actions."""
from __future__ import annotations

from vla_ros.adapters.config import AdapterConfig, GripperHysteresis
from vla_ros.core.chunking import Target


class FrankaMapping:
    def __init__(self, cfg: AdapterConfig):
        self.cfg = cfg
        self.grippers = [GripperHysteresis(cfg.close_below, cfg.open_above) for _ in cfg.command_topics]

    def pose_targets(self, target: Target) -> list[tuple[list[float], list[float]]]:
        """Per arm: (position xyz m, quaternion xyzw) for a PoseStamped in the base frame."""
        return [(target.position_m[a].tolist(), target.quat_xyzw[a].tolist()) for a in range(len(target.gripper))]

    def gripper_goals(self, target: Target) -> list[tuple[int, str, dict]]:
        """(arm, "move" | "grasp", goal fields) for each hysteresis crossing this tick."""
        goals = []
        for a, hyst in enumerate(self.grippers):
            event = hyst.update(float(target.gripper[a]))
            if event == "open":
                goals.append((a, "move", {"width": self.cfg.gripper_open_width_m, "speed": self.cfg.gripper_speed_m_s}))
            elif event == "close":
                eps = self.cfg.grasp_epsilon_m
                goals.append((a, "grasp", {"width": 0.0, "speed": self.cfg.gripper_speed_m_s,
                                           "force": self.cfg.grasp_force_n, "epsilon": (eps, eps)}))
        return goals
