"""`main()` body shared by the nodes: init, spin one node on a multi-threaded executor, clean shutdown."""
from __future__ import annotations

import rclpy


def spin_node(node_factory, args=None) -> int:
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    rclpy.init(args=args)
    node = node_factory()
    ex = MultiThreadedExecutor()
    ex.add_node(node)
    try:
        ex.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
