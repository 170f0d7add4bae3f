"""The policy node + executor (+ adapter) set of one robot, started in one process (for machines without
`ros2 launch`, for tests and for the demo)."""
from __future__ import annotations

import threading

from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from vla_ros.core.config import override
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config


class RobotStack:
    """Builds, configures and activates the policy node and the executor node in a context, spinning their
    callbacks on one SingleThreadedExecutor in a background thread. Inference and the control loop run on threads
    of their own, so every callback is short; rclpy's MultiThreadedExecutor cost more GIL time than the callbacks
    themselves (py-spy: its spin thread held the GIL in 26% of samples, mostly building wait sets)."""

    def __init__(self, config: RuntimeConfig | str, checkpoint: str = "", instruction: str = "", actuate: bool = False,
                 context=None, device: str = "", backend: str = "", url: str = "", api_key: str = "",
                 load_options: dict | None = None):
        from vla_ros.ros.nodes.executor_node import ExecutorNode
        from vla_ros.ros.nodes.policy_node import PolicyNode

        cfg = load_runtime_config(config) if isinstance(config, str) else config
        over = {k: v for k, v in {"checkpoint": checkpoint, "instruction": instruction, "device": device,
                                  "backend": backend, "url": url, "api_key": api_key}.items() if v}
        if load_options:  # merged over the YAML's policy.load_options (e.g. a released FALCON's `esm` folder)
            over["load_options"] = {**cfg.policy.load_options, **load_options}
        if over:
            cfg = override(cfg, {"policy": over})
        self.cfg = cfg
        self.policy = PolicyNode(cfg, context=context)
        self.executor_node = ExecutorNode(cfg, context=context,
                                          parameter_overrides=[Parameter("actuate", value=bool(actuate))])
        self.ex = SingleThreadedExecutor(context=context)
        self.ex.add_node(self.policy)
        self.ex.add_node(self.executor_node)
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        try:
            self.ex.spin()
        except Exception:  # shutdown races end the spin
            pass

    def start(self) -> bool:
        """Configure and activate the policy node; False (with the reason in policy.last_error) on failure."""
        self._thread.start()
        from rclpy.lifecycle import TransitionCallbackReturn as R

        if self.policy.trigger_configure() != R.SUCCESS:
            return False
        return self.policy.trigger_activate() == R.SUCCESS

    def stop(self) -> None:
        """Spinning stops, then the policy node is brought down while the context is still valid, then the nodes
        are destroyed (no callback runs on a node being brought down or destroyed). Other nodes added to `ex` are
        the caller's to destroy, after this."""
        from vla_ros.ros.spin import bring_down, stop_spinning

        stop_spinning(self.ex, self._thread)  # no callback runs while the policy node is brought down
        bring_down(self.policy)
        self.policy.destroy_node()
        self.executor_node.destroy_node()
