"""Observation figures: conversion of RGB + depth messages, and publish -> observation assembled over DDS."""
from __future__ import annotations

import time

import numpy as np

from vla_ros.bench.stats import figure, time_it
from vla_ros.core.image import array_to_image_fields, depth_and_validity, image_to_array


def conversion(h: int, w: int, repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    rgb = array_to_image_fields(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "rgb8")
    depth = array_to_image_fields(rng.integers(300, 3000, (h, w), dtype=np.uint16), "16UC1")
    keys = ("encoding", "height", "width", "step", "is_bigendian", "data")

    def convert():
        image_to_array(**{k: rgb[k] for k in keys})
        depth_and_validity(**{k: depth[k] for k in keys})
    return time_it(convert, repeats)


def dds_assembly(repeats: int) -> list[float]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from vla_ros.core.config import override
    from vla_ros.ros.observation_frontend import ObservationFrontend
    from vla_ros.ros.synthetic_robot import SyntheticRobot
    from vla_ros.runtime_config import load_runtime_config

    cfg = load_runtime_config("franka")
    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("bench_obs", context=ctx)
        robot_node = rclpy.create_node("bench_robot", context=ctx)
        obs_cfg = override(cfg.observation, {"cameras": [cfg.observation.cameras[0]], "ee_pose_topic": "",
                                             "require_instruction": False})
        frontend = ObservationFrontend(node, obs_cfg, use_tf=False)
        robot = SyntheticRobot(robot_node, cfg, size=(480, 640))
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        ex.add_node(robot_node)
        out = []
        for i in range(repeats + 3):
            stamp = robot.publish()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.001)
                obs = frontend.latest(node.get_clock().now().nanoseconds * 1e-9)
                if obs.valid and obs.stamp_s == stamp and obs.cameras[0].depth_m is not None:
                    if i >= 3:
                        out.append(node.get_clock().now().nanoseconds * 1e-9 - stamp)
                    break
        ex.shutdown()
        return out
    finally:
        rclpy.shutdown(context=ctx)


def run(device: str = "cpu", quick: bool = False) -> dict:
    n = 50 if quick else 300
    return {
        "convert_640x480_rgb8_16uc1_ms": figure(conversion(480, 640, n), "ms", 1e3),
        "convert_1280x720_rgb8_16uc1_ms": figure(conversion(720, 1280, n), "ms", 1e3),
        "publish_to_observation_640x480_ms": figure(dds_assembly(20 if quick else 100), "ms", 1e3),
    }
