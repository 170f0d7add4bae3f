"""Adapter configuration (the `adapter` section of a robot YAML): what every robot has, plus `settings`, the
robot's own typed section (its adapter's `Settings` dataclass)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from vla_ros.core.config import bounded, check, check_bounds, from_dict


@dataclass
class AdapterConfig:
    """Args:
    robot: the adapter's name (`vla_ros/adapters/<module>.py` registers it): franka | widowx | piper.
    command_topics: command topic per arm (Franka: PoseStamped target; WidowX: JointGroupCommand;
        Piper: PosCmd), in arm order.
    gripper_topics: WidowX single gripper command topic / Franka gripper action namespace, per arm.
    settings: the robot's own section, e.g. `{group: arm}` for the WidowX (see its adapter's Settings).
    """

    robot: str = "franka"
    command_topics: list[str] = field(default_factory=lambda: ["/target_pose"])
    gripper_topics: list[str] = field(default_factory=lambda: ["/franka_gripper"])
    settings: Any = None

    OVERRIDE_RESETS: ClassVar[dict[str, tuple[str, ...]]] = {"robot": ("settings",)}  # the robot's own section
    MOVED_KEYS: ClassVar[dict[str, str]] = {  # the flat keys of the layout before `settings`
        **{k: f"settings.{k}" for k in ("close_below", "open_above", "gripper_open_width_m", "grasp_force_n",
                                        "gripper_speed_m_s", "grasp_epsilon_m", "position_scale", "angle_unit")},
        **{f"widowx_{k}": f"settings.{k}" for k in ("group", "gripper_open", "gripper_closed")}}

    def __post_init__(self):
        from vla_ros.adapters.registry import adapter_class

        cls = adapter_class(self.robot).Settings
        if not isinstance(self.settings, cls):
            check(self.settings is None or isinstance(self.settings, dict), "settings", self.settings,
                  f"expected a mapping of {cls.__name__} for robot {self.robot!r}")
            self.settings = from_dict(cls, self.settings or {}, "settings")


@dataclass
class HysteresisSettings:
    """Args:
    close_below / open_above: gripper hysteresis thresholds on the [0, 1] command (1 = open).
    """

    close_below: float = bounded(0.3, 0.0, 1.0, unit="fraction of the opening")
    open_above: float = bounded(0.7, 0.0, 1.0, unit="fraction of the opening")

    def __post_init__(self):
        check_bounds(self)
        check(self.close_below < self.open_above, "close_below", self.close_below,
              f"need 0 <= close_below < open_above ({self.open_above}) <= 1")


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
