"""Shared fixtures. Every test process keeps DDS on loopback with a domain of its own."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Before anything can import rclpy: loopback only, and a per-process domain so parallel runs
# (or another developer's tests on this machine) never cross-talk.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ["ROS_DOMAIN_ID"] = str(1 + (os.getpid() + int(os.environ.get("VLA_ROS_DOMAIN_SALT", "0"))) % 100)
# The package's Fast DDS profile (large shared-memory segment, loopback UDP), as `vla-ros run` uses; subprocesses
# that a test starts (camera publishers, the CLI) inherit it.
from vla_ros.dds import apply_dds_defaults  # noqa: E402

apply_dds_defaults()

REPO = Path(__file__).resolve().parents[1]
# Per-test limits (pytest-timeout) for tests that spin DDS: a hung one fails on its own in minutes instead of
# costing the suite's blanket --timeout. A test's own @pytest.mark.timeout wins.
ROS_TIMEOUT_S = float(os.environ.get("VLA_ROS_TEST_TIMEOUT_S", "300"))
SLOW_ROS_TIMEOUT_S = 2 * ROS_TIMEOUT_S
SHARED_TESTDATA = REPO.parent / "shared" / "testdata"
INTERFACES = REPO / "interfaces"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (soak, training, demo); CI runs them")
    config.addinivalue_line("markers", "ros: spins real rclpy nodes over loopback DDS")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("ros") is not None and item.get_closest_marker("timeout") is None:
            slow = item.get_closest_marker("slow") is not None
            item.add_marker(pytest.mark.timeout(SLOW_ROS_TIMEOUT_S if slow else ROS_TIMEOUT_S))


@pytest.fixture(scope="session")
def shared_testdata() -> Path:
    """`../shared/testdata` beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_TESTDATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_TESTDATA}")
    return SHARED_TESTDATA


@pytest.fixture(scope="session")
def robot_interfaces() -> Path:
    """tf2_msgs and the robot message packages, built from interfaces/ with colcon (cached)."""
    from vla_ros.devtools.interfaces import activate, build_interfaces

    packages = {p.name: p for p in sorted(INTERFACES.iterdir()) if p.is_dir()}
    install = build_interfaces(packages, REPO / ".build" / "interfaces")
    activate(install)
    return install


@pytest.fixture
def ros_context():
    """A fresh rclpy context for one test, shut down afterwards."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        if ctx.ok():
            rclpy.shutdown(context=ctx)


def spin_until(executor, predicate, timeout_s: float = 10.0, step_s: float = 0.02) -> bool:
    """Spin `executor` until `predicate()` is true or the timeout passes; returns the predicate's value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step_s)
    return bool(predicate())


@pytest.fixture
def spin():
    return spin_until
