"""`vla-ros` subcommands, one module each (see vla_ros/cli.py)."""
