"""Process start and clean shutdown for vla_ros's ROS processes.

rclpy's own SIGINT handler shuts the context down at once, so a lifecycle node stopped afterwards fails its
transitions ("Failed to complete transition", "publisher's context is invalid"). vla_ros's processes install
no rclpy signal handler: SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, the process brings its
lifecycle nodes to `finalized` through their own on_shutdown (worker stopped, model freed) while the context is
still valid, stops spinning, destroys its nodes, and only then shuts the context down.
"""
from __future__ import annotations

import signal
import threading

import rclpy

ACTIVE_STATES = ("unconfigured", "inactive", "active")  # the primary states a shutdown transition leaves


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def init_ros(args=None, context=None) -> None:
    """rclpy.init without rclpy's signal handlers; SIGTERM (what `ros2 launch` escalates to) acts as SIGINT."""
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)


def bring_down(node) -> None:
    """Take a lifecycle node from whatever primary state it is in to `finalized` (a no-op for plain nodes, for a
    node already finalized, or one in the middle of a transition that another thread runs)."""
    machine = getattr(node, "_state_machine", None)
    if machine is not None and machine.current_state[1] in ACTIVE_STATES:
        node.trigger_shutdown()


def stop_spinning(executor, thread: threading.Thread | None = None, timeout_s: float = 5.0) -> None:
    executor.shutdown(timeout_sec=timeout_s)
    if thread is not None and thread.is_alive():
        thread.join(timeout=timeout_s)


def spin_node(node_factory, args=None) -> int:
    """`main()` of a node executable: one node on a single-threaded executor (inference and the control loop have
    threads of their own) until SIGINT/SIGTERM."""
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    init_ros(args)
    node = node_factory()
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    try:
        while rclpy.ok():
            ex.spin_once(timeout_sec=0.1)  # returns to Python often, so a signal is handled promptly
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        bring_down(node)
        stop_spinning(ex)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
