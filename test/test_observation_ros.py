"""Observation pipeline over real DDS: camera, depth, CameraInfo, joints, /tf_static and instruction in,
a valid synchronised observation out; stopping depth gives a stale-depth reason; missing tf is loud."""
import time

import numpy as np
import pytest
from ros_harness import spinning

from vla_ros.core.config import from_dict
from vla_ros.core.sync import ObservationConfig

pytestmark = pytest.mark.ros

CFG = {"cameras": [{"name": "front", "depth_topic": "/camera/aligned_depth_to_color/image_raw"}],
       "joint_names": ["j1", "j2"], "base_frame": "base", "require_extrinsics": True,
       "max_age": {"rgb_s": 0.5, "depth_s": 0.3, "joints_s": 0.2}}
OPTICAL = "camera_color_optical_frame"


class FakeRobot:
    """Publishes like a robot's drivers: sensor data with header stamps, a latched instruction, /tf_static."""

    def __init__(self, node):
        from geometry_msgs.msg import TransformStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage

        from vla_ros.ros import qos
        from vla_ros.ros.tf import STATIC_QOS

        self.node = node
        self.rgb = node.create_publisher(Image, "/camera/color/image_raw", qos.SENSOR)
        self.depth = node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", qos.SENSOR)
        self.info = node.create_publisher(CameraInfo, "/camera/color/camera_info", qos.SENSOR)
        self.joints = node.create_publisher(JointState, "/joint_states", qos.SENSOR)
        self.instr = node.create_publisher(String, "/vla/instruction", qos.LATCHED)
        self.tf_static = node.create_publisher(TFMessage, "/tf_static", STATIC_QOS)
        self.instr.publish(String(data="stack the small block on the big one"))
        t = TransformStamped()
        t.header.frame_id, t.child_frame_id = "base", OPTICAL
        t.transform.translation.x, t.transform.translation.z = 0.5, 0.8
        t.transform.rotation.w = 1.0
        self.tf_static.publish(TFMessage(transforms=[t]))

    def publish(self, with_depth=True):
        from sensor_msgs.msg import JointState

        from vla_ros.core.camera import intrinsics_from_fields
        from vla_ros.ros.msg_conversions import array_to_image_msg, intrinsics_to_camera_info_msg, s_to_stamp

        now = self.node.get_clock().now().nanoseconds * 1e-9
        rgb = np.full((6, 8, 3), 128, np.uint8)
        self.rgb.publish(array_to_image_msg(rgb, "rgb8", now, OPTICAL))
        if with_depth:
            self.depth.publish(array_to_image_msg(np.full((6, 8), 0.75, np.float32), "16UC1", now, OPTICAL))
        intr = intrinsics_from_fields([10.0, 0, 3.5, 0, 10.0, 2.5, 0, 0, 1], [], 8, 6)
        self.info.publish(intrinsics_to_camera_info_msg(intr, now, OPTICAL))
        js = JointState(name=["gripper", "j2", "j1"], position=[0.04, 0.2, 0.1])
        js.header.stamp = s_to_stamp(now)
        self.joints.publish(js)


def _run_until(ex, robot, frontend, node, pred, timeout_s=10.0, with_depth=True):
    deadline = time.monotonic() + timeout_s
    obs = None
    while time.monotonic() < deadline:
        robot.publish(with_depth)
        for _ in range(5):
            ex.spin_once(timeout_sec=0.01)
        obs = frontend.latest(node.get_clock().now().nanoseconds * 1e-9)
        if pred(obs):
            return obs
    return obs


def test_valid_observation_then_stale_depth(ros_context, robot_interfaces):
    import rclpy

    from vla_ros.ros.observation_frontend import ObservationFrontend

    node = rclpy.create_node("obs_under_test", context=ros_context)
    robot_node = rclpy.create_node("fake_robot", context=ros_context)
    frontend = ObservationFrontend(node, from_dict(ObservationConfig, CFG))
    robot = FakeRobot(robot_node)
    with spinning(ros_context, node, robot_node) as ex:
        ready = lambda o: o.valid and o.cameras and o.cameras[0].depth_m is not None  # noqa: E731
        obs = _run_until(ex, robot, frontend, node, ready)
        assert obs.valid, obs.reasons
        cam = obs.cameras[0]
        assert cam.rgb.shape == (6, 8, 3) and int(cam.rgb[0, 0, 0]) == 128
        np.testing.assert_allclose(cam.depth_m, 0.75)
        np.testing.assert_allclose(cam.T_base_camera[:3, 3], [0.5, 0.0, 0.8])
        np.testing.assert_allclose(obs.proprio, [0.1, 0.2], atol=1e-6)
        assert obs.instruction == "stack the small block on the big one"
        assert {"rgb/front", "depth/front", "joints"} <= set(obs.ages_s)
        # The depth stream stops: the next observations carry a stale-depth reason and no depth.
        obs = _run_until(ex, robot, frontend, node, lambda o: any("depth 'front' stale" in r for r in o.reasons),
                         with_depth=False)
        assert any("depth 'front' stale" in r for r in obs.reasons), obs.reasons
        assert obs.cameras[0].depth_m is None


def test_missing_tf_is_a_loud_named_error(ros_context, robot_interfaces):
    import rclpy

    from vla_ros.ros.observation_frontend import ObservationFrontend

    cfg = dict(CFG, cameras=[{"name": "front", "frame_id": "wrist_camera_optical_frame"}])
    node = rclpy.create_node("obs_no_tf", context=ros_context)
    robot_node = rclpy.create_node("fake_robot_no_tf", context=ros_context)
    frontend = ObservationFrontend(node, from_dict(ObservationConfig, cfg))
    robot = FakeRobot(robot_node)
    with spinning(ros_context, node, robot_node) as ex:
        obs = _run_until(ex, robot, frontend, node, lambda o: any("wrist_camera_optical_frame" in r for r in o.reasons))
    assert not obs.valid
    assert any("no transform base <- wrist_camera_optical_frame" in r for r in obs.reasons), obs.reasons
    assert all(c.T_base_camera is None for c in obs.cameras)


def test_bad_messages_are_counted_not_raised(ros_context, robot_interfaces):
    import rclpy
    from sensor_msgs.msg import Image, JointState

    from vla_ros.ros import qos
    from vla_ros.ros.observation_frontend import ObservationFrontend

    node = rclpy.create_node("obs_bad_input", context=ros_context)
    pub_node = rclpy.create_node("bad_pub", context=ros_context)
    frontend = ObservationFrontend(node, from_dict(ObservationConfig, CFG), use_tf=False)
    img = pub_node.create_publisher(Image, "/camera/color/image_raw", qos.SENSOR)
    js = pub_node.create_publisher(JointState, "/joint_states", qos.SENSOR)
    with spinning(ros_context, node, pub_node) as ex:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (frontend.rejected["rgb/front"] and frontend.rejected["joints"]):
            img.publish(Image(height=2, width=2, encoding="rgb8", step=5, data=bytes(10)))
            js.publish(JointState(name=["j1", "j2"], position=[0.0, float("nan")]))
            ex.spin_once(timeout_sec=0.05)
    assert "step" in frontend.last_errors["rgb/front"]
    assert "j2" in frontend.last_errors["joints"]


def test_observation_node_reports_health_on_diagnostics(ros_context, robot_interfaces):
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from vla_ros.ros.nodes.observation_node import ObservationNode

    node = ObservationNode(context=ros_context)
    listener = rclpy.create_node("diag_listener", context=ros_context)
    got = []
    listener.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    with spinning(ros_context, node, listener) as ex:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not got:
            ex.spin_once(timeout_sec=0.05)
    status = got[0].status[0]
    assert status.name == "vla_ros: observation" and "rgb 'front' missing" in status.message
