"""The policy node + executor (+ adapter) set of one robot, started in one process (for machines without
`ros2 launch`, for tests and for the demo)."""
from __future__ import annotations

import threading

from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter

from vla_ros.core.config import from_dict, to_dict
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config


class RobotStack:
    """Builds, configures and activates the policy node and the executor node in a context, spinning them on a
    MultiThreadedExecutor in a background thread."""

    def __init__(self, config: RuntimeConfig | str, checkpoint: str = "", instruction: str = "", actuate: bool = False,
                 context=None, threads: int = 4, device: str = "", load_options: dict | None = None):
        from vla_ros.ros.nodes.executor_node import ExecutorNode
        from vla_ros.ros.nodes.policy_node import PolicyNode

        cfg = load_runtime_config(config) if isinstance(config, str) else config
        over = {k: v for k, v in {"checkpoint": checkpoint, "instruction": instruction, "device": device}.items() if v}
        if load_options:  # merged over the YAML's policy.load_options (e.g. a released FALCON's `esm` folder)
            over["load_options"] = {**cfg.policy.load_options, **load_options}
        if over:
            pol = {**to_dict(cfg.policy), **over}
            cfg = from_dict(RuntimeConfig, {**to_dict(cfg), "policy": pol})
        self.cfg = cfg
        self.policy = PolicyNode(cfg, context=context)
        self.executor_node = ExecutorNode(cfg, context=context,
                                          parameter_overrides=[Parameter("actuate", value=bool(actuate))])
        self.ex = MultiThreadedExecutor(num_threads=threads, context=context)
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
        try:
            self.policy.trigger_deactivate()
            self.policy.trigger_cleanup()
        except Exception:
            pass
        self.ex.shutdown(timeout_sec=2.0)
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.policy.destroy_node()
        self.executor_node.destroy_node()
