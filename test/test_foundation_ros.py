"""ActionChunk and the standard sensor messages over real DDS (two nodes, loopback, own domain)."""
import os

import numpy as np
import pytest
from ros_harness import spinning

pytestmark = pytest.mark.ros


def test_dds_stays_on_loopback_with_own_domain():
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert 0 < int(os.environ["ROS_DOMAIN_ID"]) <= 101


def test_ros_tests_carry_a_per_test_timeout_far_below_the_suites(request):
    import conftest

    assert request.config.pluginmanager.hasplugin("timeout"), "pytest-timeout (the test extra) is not installed"
    marker = request.node.get_closest_marker("timeout")
    assert marker is not None and marker.args[0] == conftest.ROS_TIMEOUT_S < 900


def _roundtrip(ctx, spin, msg_type, msg, topic):
    import rclpy

    name = topic.strip("/").replace("/", "_")
    pub_node = rclpy.create_node("pub_" + name, context=ctx)
    sub_node = rclpy.create_node("sub_" + name, context=ctx)
    got = []
    sub_node.create_subscription(msg_type, topic, got.append, 10)
    pub = pub_node.create_publisher(msg_type, topic, 10)

    def received():
        if not got:
            pub.publish(msg)
        return bool(got)

    with spinning(ctx, pub_node, sub_node) as ex:
        assert spin(ex, received, timeout_s=10.0), f"nothing received on {topic}"
    return got[0]


def test_action_chunk_roundtrip(ros_context, spin):
    from geometry_msgs.msg import Pose

    from vla_ros.msg import ActionChunk

    msg = ActionChunk()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345
    msg.header.frame_id = "fr3_link0"
    msg.arm_names = ["left", "right"]
    msg.horizon, msg.dt_s = 2, 0.05
    msg.reference = ActionChunk.REFERENCE_DELTA_TARGET
    poses = []
    for i in range(4):
        p = Pose()
        p.position.x = 0.1 * i
        p.orientation.w = 1.0
        poses.append(p)
    msg.poses = poses
    msg.gripper = [1.0, 0.0, 0.5, 1.0]
    msg.modalities = ["rgb", "depth"]
    msg.method, msg.policy_name, msg.sequence_id, msg.inference_latency_s = "falcon", "tiny", 7, 0.012
    got = _roundtrip(ros_context, spin, ActionChunk, msg, "/test/action_chunk")
    assert got.header.frame_id == "fr3_link0" and got.header.stamp.nanosec == 345
    assert list(got.arm_names) == ["left", "right"] and got.horizon == 2
    assert got.reference == ActionChunk.REFERENCE_DELTA_TARGET == 1
    assert [p.position.x for p in got.poses] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(np.asarray(got.gripper), [1.0, 0.0, 0.5, 1.0])
    assert list(got.modalities) == ["rgb", "depth"] and got.sequence_id == 7


def test_sensor_messages_roundtrip(ros_context, spin):
    from sensor_msgs.msg import CameraInfo, Image, JointState

    img = Image(height=2, width=3, encoding="rgb8", step=9, data=bytes(range(18)))
    got = _roundtrip(ros_context, spin, Image, img, "/test/image")
    assert (got.height, got.width, got.encoding, got.step) == (2, 3, "rgb8", 9)
    assert bytes(got.data) == bytes(range(18))

    info = CameraInfo(width=640, height=480, k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1])
    got = _roundtrip(ros_context, spin, CameraInfo, info, "/test/camera_info")
    assert list(got.k) == [500.0, 0, 320, 0, 500, 240, 0, 0, 1]

    js = JointState(name=["j1", "j2"], position=[0.5, -0.25])
    got = _roundtrip(ros_context, spin, JointState, js, "/test/joint_states")
    assert list(got.name) == ["j1", "j2"] and list(got.position) == [0.5, -0.25]
