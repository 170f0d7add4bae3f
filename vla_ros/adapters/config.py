"""Adapter configuration (one section of a robot YAML)."""
from __future__ import annotations

from dataclasses import dataclass, field

from vla_ros.core.config import check, check_range


@dataclass
class AdapterConfig:
    """Args:
    robot: franka | widowx | piper.
    command_topics: command topic per arm (Franka: PoseStamped target; WidowX: JointGroupCommand;
        Piper: PosCmd), in arm order.
    gripper_topics: WidowX single gripper command topic / Franka gripper action namespace, per arm.
    close_below / open_above: gripper hysteresis thresholds on the [0, 1] command (1 = open).
    gripper_open_width_m: width commanded when open (Franka Move, Piper PosCmd gripper).
    grasp_force_n, gripper_speed_m_s, grasp_epsilon_m: Franka Grasp goal fields.
    position_scale / angle_unit: Piper driver units (1.0 and "rad" for piper_ros; some drivers use mm / deg).
    widowx_group: JointGroupCommand group name. widowx_gripper_open / widowx_gripper_closed: gripper command values.
    """

    robot: str = "franka"
    command_topics: list[str] = field(default_factory=lambda: ["/target_pose"])
    gripper_topics: list[str] = field(default_factory=lambda: ["/franka_gripper"])
    close_below: float = 0.3
    open_above: float = 0.7
    gripper_open_width_m: float = 0.08
    grasp_force_n: float = 20.0
    gripper_speed_m_s: float = 0.1
    grasp_epsilon_m: float = 0.08
    position_scale: float = 1.0
    angle_unit: str = "rad"
    widowx_group: str = "arm"
    widowx_gripper_open: float = 1.0
    widowx_gripper_closed: float = -1.0

    def __post_init__(self):
        check(self.robot in ("franka", "widowx", "piper"), "robot", self.robot, "expected franka, widowx or piper")
        check(0.0 <= self.close_below < self.open_above <= 1.0, "close_below", self.close_below,
              f"need 0 <= close_below < open_above ({self.open_above}) <= 1")
        check(self.angle_unit in ("rad", "deg"), "angle_unit", self.angle_unit, "expected rad or deg")
        check_range("gripper_open_width_m", self.gripper_open_width_m, 0.0, 0.3)


class GripperHysteresis:
    """Turns a continuous [0, 1] command into open/close events, once per crossing (no goal every tick)."""

    def __init__(self, close_below: float, open_above: float, initially_open: bool = True):
        self.close_below, self.open_above = close_below, open_above
        self.is_open = initially_open

    def update(self, value: float) -> str | None:
        if self.is_open and value < self.close_below:
            self.is_open = False
            return "close"
        if not self.is_open and value > self.open_above:
            self.is_open = True
            return "open"
        return None
