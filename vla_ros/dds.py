"""The DDS environment vla_ros's processes start with (no rclpy here: it must be set before rclpy.init).

Fast DDS's default shared-memory segment (512 KiB) is smaller than one 640x480 rgb8 frame, so best-effort image
topics between processes lose most frames (measured: 8 of 240 delivered). vla_ros ships a profile with a 64 MiB
segment and loopback-only UDP (`assets/fastdds_profile.xml`). The segment belongs to the *publisher*: a camera
driver started outside vla_ros needs the same variable in its environment (`vla-ros doctor --profile` prints the
line to export). A profile the user already set is kept; VLA_ROS_DDS_PROFILE=0 leaves Fast DDS's defaults.
"""
from __future__ import annotations

import os
from pathlib import Path

PROFILE = Path(__file__).resolve().parent / "assets" / "fastdds_profile.xml"
PROFILE_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")  # Fast DDS 3.x, 2.x names


def uses_fastdds(env=os.environ) -> bool:
    return env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") in ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp", "")


def apply_dds_defaults(env=os.environ) -> str:
    """Keep DDS on this machine unless told otherwise, and give Fast DDS the large-frame profile unless a
    profile is already set. Returns the profile in use ('' when the RMW is not Fast DDS)."""
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if not uses_fastdds(env) or env.get("VLA_ROS_DDS_PROFILE") == "0":
        return ""
    given = next((env[v] for v in PROFILE_VARS if env.get(v)), "")
    if given:
        return given
    env[PROFILE_VARS[0]] = str(PROFILE)  # the 2.x name is read too, but rmw warns that it is deprecated
    return str(PROFILE)


def export_line() -> str:
    return f"export {PROFILE_VARS[0]}={PROFILE}"
