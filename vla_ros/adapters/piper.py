"""AgileX Piper (dual arm): per-arm piper_msgs/PosCmd (x, y, z, roll, pitch, yaw, gripper, mode1, mode2).
Units follow piper_ros (m, rad, gripper opening in m, 0..0.08) unless the settings say otherwise."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.adapters.base import DriverMessage, Recorded, RobotAdapter
from vla_ros.adapters.registry import register
from vla_ros.core.chunking import Target
from vla_ros.core.config import bounded, check_bounds
from vla_ros.core.transforms import quat_to_euler_xyz

POS_CMD = "piper_msgs/msg/PosCmd"
DOWN = (1.0, 0.0, 0.0, 0.0)


@dataclass
class PiperSettings:
    """Args:
    gripper_open_width_m: the PosCmd gripper value of a fully open gripper (an opening in m, as piper_ros).
    position_scale / angle_unit: driver units (1.0 and "rad" for piper_ros; some drivers use mm (1000) / deg).
    """

    gripper_open_width_m: float = bounded(0.08, 1e-3, 0.3)
    position_scale: float = bounded(1.0, 1e-6, 1e6, unit="driver position units per m")
    angle_unit: Literal["rad", "deg"] = "rad"

    def __post_init__(self):
        check_bounds(self)


@register("piper")
class PiperAdapter(RobotAdapter):
    Settings = PiperSettings
    gripper_in_commands = True

    def publications(self) -> list[tuple[str, str]]:
        return [(t, POS_CMD) for t in self.cfg.command_topics]

    def encode(self, target: Target, stamp_s: float, frame_id: str) -> list[DriverMessage]:
        s, out = self.settings, []
        for a, topic in enumerate(self.cfg.command_topics[:len(target.gripper)]):
            rpy = quat_to_euler_xyz(target.quat_xyzw[a])
            if s.angle_unit == "deg":
                rpy = np.degrees(rpy)
            x, y, z = (float(v) * s.position_scale for v in target.position_m[a])
            out.append(DriverMessage(topic, POS_CMD, {
                "x": x, "y": y, "z": z, "roll": float(rpy[0]), "pitch": float(rpy[1]), "yaw": float(rpy[2]),
                "gripper": float(np.clip(target.gripper[a], 0, 1)) * s.gripper_open_width_m, "mode1": 0, "mode2": 0}))
        return out

    def decode(self, topic: str, arm: int, msg, t_ns: int) -> Recorded:
        s = self.settings
        rpy = np.array([msg.roll, msg.pitch, msg.yaw], dtype=np.float64)
        if s.angle_unit == "deg":
            rpy = np.radians(rpy)
        q = Rotation.from_euler("xyz", rpy).as_quat()
        xyz = np.array([msg.x, msg.y, msg.z], dtype=np.float64) / s.position_scale
        gripper = float(np.clip(msg.gripper / s.gripper_open_width_m, 0.0, 1.0)) if np.isfinite(msg.gripper) else None
        return Recorded(t_ns * 1e-9, np.concatenate([xyz, q]), gripper)

    @classmethod
    def demo_target(cls, t_s: float, seconds: float, n_arms: int) -> Target:
        """Left arm sweeping and turning, right arm sweeping; the right gripper stays at 0.75 open."""
        s, c = np.sin(0.5 * t_s), np.cos(0.5 * t_s)
        pos = np.array([[0.30 + 0.05 * s, 0.25, 0.25], [0.30, -0.25 + 0.04 * s, 0.20 + 0.03 * c]])
        left = (Rotation.from_euler("z", 0.2 * s) * Rotation.from_quat(DOWN)).as_quat()
        return Target(pos, np.stack([left, DOWN]), np.array([1.0 if t_s < seconds / 2 else 0.0, 0.75]))
