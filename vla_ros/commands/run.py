"""`vla-ros run --robot franka --checkpoint CKPT --instruction "..." [--actuate]`: the policy node, the executor
and the adapter of one robot in one process (what `ros2 launch vla_ros <robot>.launch.py` starts)."""
from __future__ import annotations

import sys
import time

from vla_ros.dds import apply_dds_defaults

HELP = "start policy node + executor + adapter for a robot in one process"


def add_arguments(parser) -> None:
    parser.add_argument("--robot", default="franka", help="config name (franka, widowx, agilex, sim_franka) or YAML")
    parser.add_argument("--checkpoint", default="", help="local checkpoint folder")
    parser.add_argument("--instruction", default="")
    parser.add_argument("--device", default="", choices=("", "cpu", "cuda"), help="override the YAML's device")
    parser.add_argument("--actuate", action="store_true", help="send commands to the controller (default: dry run)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    parser.add_argument("--backend", default="", choices=("", "local", "openpi", "openvla_oft"),
                        help="where the policy runs: here (local) or a server (override the YAML)")
    parser.add_argument("--url", default="", help="the policy server (ws://host:port or http://host:port/act)")
    parser.add_argument("--api-key", default="", help="the policy server's key")
    parser.add_argument("--esm", default="", help="a released FALCON checkpoint's ESM folder (policy.load_options.esm)")
    parser.add_argument("--load-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a released checkpoint's load option (YAML value), e.g. kosmos2=/models/kosmos-2")
    parser.add_argument("--record", default="", help="record observations, chunks, commands and status to this "
                                                      "MCAP rosbag2 folder")


def load_options(args) -> dict:
    """--esm and --load-option KEY=VALUE (VALUE parsed as YAML) -> a load_options dict."""
    import yaml

    from vla_ros.core.config import ConfigError

    out = {"esm": args.esm} if getattr(args, "esm", "") else {}
    for item in getattr(args, "load_option", []):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--load-option {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def run(args) -> int:
    apply_dds_defaults()  # loopback discovery, and the large-frame Fast DDS profile
    import rclpy

    from vla_ros.core.config import ConfigError
    from vla_ros.ros.launch_set import RobotStack
    from vla_ros.ros.spin import init_ros

    try:
        options = load_options(args)
    except ConfigError as exc:
        print(f"vla-ros run: {exc}", file=sys.stderr)
        return 1
    init_ros()
    try:
        stack = RobotStack(args.robot, args.checkpoint, args.instruction, args.actuate, device=args.device,
                           backend=args.backend, url=args.url, api_key=args.api_key, load_options=options)
    except (ConfigError, ImportError) as exc:
        print(f"vla-ros run: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    if not stack.start():
        print(f"vla-ros run: policy node failed to configure: {stack.policy.last_error}", file=sys.stderr)
        stack.stop()
        rclpy.try_shutdown()
        return 1
    recorder = None
    if args.record:
        from vla_ros.ros.recorder import BagRecorder, runtime_topics

        recorder = BagRecorder(stack.executor_node, args.record, runtime_topics(stack.cfg))
    print(f"vla-ros run: {args.robot} running ({'ACTUATING' if args.actuate else 'dry run'}); Ctrl-C to stop")
    try:
        t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        while time.monotonic() < t_end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if recorder is not None:
            print(f"vla-ros run: recorded {recorder.close()} to {args.record}")
        stack.stop()
        rclpy.try_shutdown()
    return 0
