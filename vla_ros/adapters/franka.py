"""Franka: PoseStamped targets in the base frame for a Cartesian impedance controller (CRISP target_pose /
equilibrium_pose style), gripper through franka_gripper's Move (open) and Grasp (close) actions. The simulator
(`config/sim_franka.yaml`) serves the same topics and actions, so it uses this adapter too."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_ros.adapters.base import DriverMessage, Recorded, RobotAdapter, header_time_s, pose_stamped_fields
from vla_ros.adapters.config import GripperHysteresis, HysteresisSettings
from vla_ros.adapters.registry import register
from vla_ros.core.chunking import Target
from vla_ros.core.config import bounded, check_bounds

POSE = "geometry_msgs/msg/PoseStamped"
MOVE, GRASP = "franka_msgs/action/Move", "franka_msgs/action/Grasp"


@dataclass
class FrankaSettings(HysteresisSettings):
    """Args (besides the gripper hysteresis):
    gripper_open_width_m: width commanded when open (Move).
    grasp_force_n, gripper_speed_m_s, grasp_epsilon_m: Grasp goal fields (speed also Move's).
    """

    gripper_open_width_m: float = bounded(0.08, 1e-3, 0.3)
    grasp_force_n: float = bounded(20.0, 0.0, 200.0)
    gripper_speed_m_s: float = bounded(0.1, 1e-3, 1.0)
    grasp_epsilon_m: float = bounded(0.08, 0.0, 0.3)

    def __post_init__(self):
        super().__post_init__()
        check_bounds(self)


@register("franka")
class FrankaAdapter(RobotAdapter):
    Settings = FrankaSettings

    @classmethod
    def gripper_topics_needed(cls, n_arms: int) -> int:
        return n_arms  # one franka_gripper action namespace per arm

    def __init__(self, cfg):
        super().__init__(cfg)
        self.grippers = [GripperHysteresis(self.settings.close_below, self.settings.open_above)
                         for _ in cfg.gripper_topics]

    def publications(self) -> list[tuple[str, str]]:
        return [(t, POSE) for t in self.cfg.command_topics]

    def goals(self) -> list[tuple[str, str]]:
        return [(f"{ns}/{kind}", typ) for ns in self.cfg.gripper_topics for kind, typ in (("move", MOVE),
                                                                                          ("grasp", GRASP))]

    def encode(self, target: Target, stamp_s: float, frame_id: str) -> list[DriverMessage]:
        out = [DriverMessage(topic, POSE, pose_stamped_fields(stamp_s, frame_id, target.position_m[a],
                                                                target.quat_xyzw[a]))
               for a, topic in enumerate(self.cfg.command_topics[:len(target.gripper)])]
        for a, ns in enumerate(self.cfg.gripper_topics):
            kind, fields = self.gripper_goal(a, float(target.gripper[a])) if a < len(target.gripper) else (None, {})
            if kind is not None:
                out.append(DriverMessage(f"{ns}/{kind}", MOVE if kind == "move" else GRASP, fields))
        return out

    def gripper_goal(self, arm: int, command: float) -> tuple[str | None, dict]:
        """("move" | "grasp", goal fields) when arm's [0, 1] gripper command crosses a threshold, else None."""
        s = self.settings
        event = self.grippers[arm].update(command)
        if event == "open":
            return "move", {"width": float(s.gripper_open_width_m), "speed": float(s.gripper_speed_m_s)}
        if event == "close":
            eps = float(s.grasp_epsilon_m)
            return "grasp", {"width": 0.0, "speed": float(s.gripper_speed_m_s), "force": float(s.grasp_force_n),
                             "epsilon": {"inner": eps, "outer": eps}}
        return None, {}

    def decode(self, topic: str, arm: int, msg, t_ns: int) -> Recorded:
        p, o = msg.pose.position, msg.pose.orientation
        return Recorded(header_time_s(msg, t_ns), np.array([p.x, p.y, p.z, o.x, o.y, o.z, o.w], dtype=np.float64))
