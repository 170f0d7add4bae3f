"""Observation node: runs the observation pipeline of a robot config on its own and reports its health on
/diagnostics at 1 Hz (valid or not, every source's age, the reasons, rejected messages per source). Useful to
check a robot's sensors and tf before running a policy:
`ros2 run vla_ros observation_node --ros-args -p config:=franka`.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from vla_ros.ros.diagnostics import status_array
from vla_ros.ros.observation_frontend import ObservationFrontend
from vla_ros.runtime_config import load_runtime_config


class ObservationNode(Node):
    def __init__(self, **kwargs):
        super().__init__("vla_observation", **kwargs)
        self.declare_parameter("config", "franka", ParameterDescriptor(description="robot config name or YAML",
                                                                       read_only=True))
        cfg = load_runtime_config(self.get_parameter("config").value)
        self.frontend = ObservationFrontend(self, cfg.observation)
        self.pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._report)

    def _report(self) -> None:
        obs = self.frontend.latest(self.get_clock().now().nanoseconds * 1e-9)
        values = {f"age_s/{k}": v for k, v in obs.ages_s.items()}
        values.update({f"rejected/{k}": v for k, v in self.frontend.rejected.items()})
        msg = "; ".join(obs.reasons) or "ok"
        self.pub.publish(status_array(self, "vla_ros: observation", "ok" if obs.valid else "error", msg, values))


def main(args=None) -> int:
    from vla_ros.ros.spin import spin_node

    return spin_node(ObservationNode, args)
