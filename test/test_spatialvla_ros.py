"""A released-layout SpatialVLA folder (tiny widths) run end to end over DDS with the WidowX config: synthetic
sensor topics -> policy node -> ActionChunk -> executor -> WidowX joint commands; the published chunk equals a
direct forward of the same folder on the same image. A bad folder leaves the node up and unconfigured."""
import time

import numpy as np
import pytest
import rclpy
import torch
from rclpy.executors import SingleThreadedExecutor
from ros_harness import drive

from vla_ros.core.config import from_dict, to_dict
from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.spatialvla.loading_spatialvla import load_released, save_released
from vla_ros.ros.synthetic_robot import SyntheticRobot
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config

pytestmark = pytest.mark.ros

STATS = {"bridge_orig/1.0.0": {"action": {"q01": [-0.02, -0.02, -0.02, -0.1, -0.1, -0.1, 0.0],
                                          "q99": [0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 1.0],
                                          "mask": [True] * 6 + [False]}}}
OPTIONS = {"unnorm_key": "bridge_orig/1.0.0", "action_reference": "delta_target", "dt_s": 0.2}


def tiny_folder(path):
    torch.manual_seed(0)
    policy = make_policy(tiny_config("spatialvla", image_size=224, method_args={"statistics": STATS}))
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_released(policy, path)
    return path


def widowx_config(folder, options=None):
    cfg = load_runtime_config("widowx_spatialvla")
    return from_dict(RuntimeConfig, {**to_dict(cfg), "policy": {**to_dict(cfg.policy), "checkpoint": str(folder),
                                                                "device": "cpu", "load_options": options or OPTIONS}})


@pytest.mark.parametrize("ensemble", ["none", "simpler"])
def test_widowx_runs_the_released_folder_and_publishes_the_direct_forward(ensemble, tmp_path, ros_context,
                                                                          robot_interfaces):
    """ensemble none: the 4-step chunk; simpler (SimplerEnv's pattern): one ensembled step per inference, whose
    first equals the chunk's step 0."""
    from interbotix_xs_msgs.msg import JointGroupCommand

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.chunk_msg import msg_to_chunk
    from vla_ros.ros.launch_set import RobotStack

    folder = tiny_folder(tmp_path / "spatialvla-tiny")
    options = {**OPTIONS, "ensemble": ensemble}
    cfg = widowx_config(folder, options)
    node = rclpy.create_node("fake_widowx", context=ros_context)
    fake = SyntheticRobot(node, cfg, instruction="Put the carrot on the plate")
    chunks, commands = [], []
    node.create_subscription(ActionChunk, cfg.policy.chunk_topic, chunks.append, 50)
    node.create_subscription(JointGroupCommand, cfg.adapter.command_topics[0], commands.append, 50)
    stack = RobotStack(cfg, actuate=True, context=ros_context)
    try:
        assert stack.start(), stack.policy.last_error
        assert stack.policy.policy.method == "spatialvla"
        drive(ros_context, node, fake, lambda: len(chunks) >= 2 and commands, timeout_s=60.0)
        assert len(chunks) >= 2, (stack.policy.last_reasons, stack.policy.last_error)
        assert commands, dict(stack.executor_node.core.counters)
    finally:
        stack.stop()
        node.destroy_node()
    got = msg_to_chunk(chunks[0])
    assert got.reference == "delta_target" and got.method == "spatialvla"
    assert got.horizon == (4 if ensemble == "none" else 1)
    assert got.modalities == ("rgb",) and commands[-1].name == "arm" and len(commands[-1].cmd) == 6
    rgb = np.zeros((fake.h, fake.w, 3), np.uint8)  # the synthetic robot's frame
    rgb[10:20, 20:30, 0] = 255
    cam = CameraObservation("front", rgb, np.eye(3), got.stamp_s)
    obs = Observation(got.stamp_s, [cam], np.zeros(6, np.float32), "Put the carrot on the plate")
    direct = load_released(folder, "cpu", options).infer(obs)
    np.testing.assert_allclose(got.position_m, direct.position_m, atol=1e-6)
    np.testing.assert_allclose(got.quat_xyzw, direct.quat_xyzw, atol=1e-6)
    np.testing.assert_array_equal(got.gripper, direct.gripper)
    assert got.stamp_s == direct.stamp_s and got.dt_s == pytest.approx(0.2)


def test_a_truncated_folder_fails_configure_and_the_node_stays_up(tmp_path, ros_context, robot_interfaces):
    from rclpy.lifecycle import TransitionCallbackReturn as R

    from vla_ros.ros.nodes.policy_node import PolicyNode

    folder = tiny_folder(tmp_path / "spatialvla-tiny")
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in folder.iterdir():
        data = p.read_bytes()
        (bad / p.name).write_bytes(data[: len(data) // 3] if p.name.startswith("model-00001") else data)
    node = PolicyNode(widowx_config(bad), context=ros_context)
    try:
        assert node.trigger_configure() == R.FAILURE
        assert "model-00001-of-00002.safetensors: truncated" in node.last_error and node.policy is None
        node._given_config = widowx_config(folder)  # still up: a good folder configures now
        assert node.trigger_configure() == R.SUCCESS and node.policy.method == "spatialvla"
        assert node.trigger_cleanup() == R.SUCCESS
    finally:
        node.destroy_node()


def test_widowx_pose_node_publishes_forward_kinematics_on_the_measured_pose_topic(ros_context, robot_interfaces):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState

    from vla_ros.adapters.widowx import fk
    from vla_ros.ros.nodes.widowx_pose_node import WidowXPoseNode

    cfg = load_runtime_config("widowx_spatialvla")
    pose_node = WidowXPoseNode(context=ros_context)
    node = rclpy.create_node("fake_joints", context=ros_context)
    got = []
    from vla_ros.ros import qos

    node.create_subscription(PoseStamped, cfg.executor.measured_pose_topic, got.append, qos.SENSOR)
    pub = node.create_publisher(JointState, cfg.observation.joint_topic, 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(pose_node)
    ex.add_node(node)
    q = [0.1, -0.3, 0.4, 0.0, 0.5, -0.2]
    names = list(cfg.observation.joint_names)
    try:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not got:
            pub.publish(JointState(name=["left_finger", *names[::-1]], position=[0.02, *q[::-1]]))  # by name
            ex.spin_once(timeout_sec=0.05)
    finally:
        ex.shutdown()
        pose_node.destroy_node()
        node.destroy_node()
    assert got, "no pose published"
    T = fk(np.array(q))
    p, o = got[-1].pose.position, got[-1].pose.orientation
    np.testing.assert_allclose([p.x, p.y, p.z], T[:3, 3], atol=1e-9)
    from scipy.spatial.transform import Rotation

    R = Rotation.from_quat([o.x, o.y, o.z, o.w]).as_matrix()
    np.testing.assert_allclose(R, T[:3, :3], atol=1e-9)
    assert got[-1].header.frame_id == cfg.observation.base_frame
