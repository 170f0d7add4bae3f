"""`vla-ros serve --checkpoint PATH [--host 127.0.0.1] [--port 8000] [--api-key KEY]`: one vla_ros policy (any
method, any checkpoint the policy node loads) served over openpi's websocket protocol, for a robot PC that runs
`vla-ros run --backend openpi --url ws://HOST:PORT` or an openpi client."""
from __future__ import annotations

import os
import sys

HELP = "serve a policy over openpi's websocket protocol (policy on a GPU host, robot on its own PC)"


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder (vla_ros or a released layout)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port (0 = any free port, printed)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--api-key", default=os.environ.get("VLA_ROS_API_KEY", ""),
                        help="require `Authorization: Api-Key <key>` (default: $VLA_ROS_API_KEY)")
    parser.add_argument("--load-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a released checkpoint loader's option (e.g. unnorm_key=bridge_orig), repeatable")
    parser.add_argument("--max-request-mb", type=float, default=32.0, help="refuse larger requests")
    parser.add_argument("--max-batch", type=int, default=8, help="requests per forward pass (1 = no batching)")


def run(args) -> int:
    from vla_ros.commands.run import load_options
    from vla_ros.core.config import ConfigError
    from vla_ros.policies.checkpoint_io import load_policy
    from vla_ros.serving.server import PolicyServer

    try:
        options = load_options(args)  # KEY=VALUE, VALUE read as YAML, as `vla-ros run` reads them
    except ConfigError as exc:
        print(f"vla-ros serve: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"vla-ros serve: WARNING: binding {args.host} without --api-key: anyone who can reach this port can "
              "query the policy", file=sys.stderr)
    try:
        policy = load_policy(args.checkpoint, args.device, options)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"vla-ros serve: {exc}", file=sys.stderr)
        return 1
    server = PolicyServer(policy, args.host, args.port, args.api_key, int(args.max_request_mb * (1 << 20)),
                          args.max_batch)
    port = server.start_in_thread()
    print(f"vla-ros serve: {policy.method} ({policy.config.name}) on ws://{args.host}:{port} "
          f"(batching {'on' if server.batching else 'off'}; Ctrl-C to stop)", flush=True)
    try:
        server._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
