"""AgileX Piper (dual arm): per-arm piper_msgs/PosCmd (x, y, z, roll, pitch, yaw, gripper, mode1, mode2).
Units follow piper_ros (m, rad, gripper opening in m, 0..0.08) unless the config says otherwise."""
from __future__ import annotations

import numpy as np

from vla_ros.adapters.config import AdapterConfig
from vla_ros.core.chunking import Target
from vla_ros.core.transforms import quat_to_euler_xyz


class PiperMapping:
    def __init__(self, cfg: AdapterConfig):
        self.cfg = cfg

    def pos_cmds(self, target: Target) -> list[dict]:
        out = []
        for a in range(len(target.gripper)):
            rpy = quat_to_euler_xyz(target.quat_xyzw[a])
            if self.cfg.angle_unit == "deg":
                rpy = np.degrees(rpy)
            x, y, z = (float(v) * self.cfg.position_scale for v in target.position_m[a])
            out.append({"x": x, "y": y, "z": z, "roll": float(rpy[0]), "pitch": float(rpy[1]), "yaw": float(rpy[2]),
                        "gripper": float(np.clip(target.gripper[a], 0, 1)) * self.cfg.gripper_open_width_m,
                        "mode1": 0, "mode2": 0})
        return out
