"""The simulator node over real DDS: the topics a Franka + RealSense publish (units, frames, tf, CameraInfo), the
Franka adapter's commands (target pose, gripper Move/Grasp actions), and the live observation frontend
assembling a valid observation from it."""
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

pytestmark = pytest.mark.ros

TOPICS = {"rgb": "/camera/color/image_raw", "depth": "/camera/aligned_depth_to_color/image_raw",
          "info": "/camera/color/camera_info", "joints": "/joint_states", "fingers": "/franka_gripper/joint_states",
          "pose": "/current_pose", "tf_static": "/tf_static", "tf": "/tf", "instruction": "/vla/instruction"}


class Probe:
    """A node that records the latest message of every simulator topic."""

    def __init__(self, ctx):
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage

        from vla_ros.ros import qos
        from vla_ros.ros.tf import STATIC_QOS

        self.node = rclpy.create_node("sim_probe", context=ctx)
        self.msgs = {}
        types = {"rgb": Image, "depth": Image, "info": CameraInfo, "joints": JointState, "fingers": JointState,
                 "pose": PoseStamped, "tf_static": TFMessage, "tf": TFMessage, "instruction": String}
        profiles = {"tf_static": STATIC_QOS, "instruction": qos.LATCHED, "tf": qos.RELIABLE}
        for key, topic in TOPICS.items():
            self.node.create_subscription(types[key], topic, lambda m, k=key: self.msgs.__setitem__(k, m),
                                          profiles.get(key, qos.SENSOR))
        self.target = self.node.create_publisher(PoseStamped, "/target_pose", qos.RELIABLE)

    def send_target(self, xyz, frame="base"):
        from geometry_msgs.msg import PoseStamped

        msg = PoseStamped()
        msg.header.frame_id = frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in xyz)
        msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
        self.target.publish(msg)


@pytest.fixture
def rig(ros_context, robot_interfaces):
    from rclpy.executors import MultiThreadedExecutor

    from vla_ros.ros.nodes.sim_node import SimNode, SimNodeConfig

    def make(**cfg):
        sim = SimNode(SimNodeConfig(seed=3, task="place_on_platform", **cfg), context=ros_context)
        probe = Probe(ros_context)
        ex = MultiThreadedExecutor(num_threads=4, context=ros_context)
        ex.add_node(sim)
        ex.add_node(probe.node)
        made.append((sim, probe, ex))
        return sim, probe, ex

    made = []
    yield make
    for sim, probe, ex in made:
        ex.shutdown(timeout_sec=2.0)
        sim.destroy_node()
        probe.node.destroy_node()


def reference(seed=3, task="place_on_platform"):
    """The same episode in a local environment (ground truth for the published values)."""
    from vla_ros.sim.env import SimConfig, SimEnv

    env = SimEnv(SimConfig())
    obs = env.reset(seed, task)
    T = env.T_base_camera()
    env.close()
    return obs, T


def test_sensor_topics_units_frames_and_tf(rig, spin):
    from vla_ros.ros.msg_conversions import camera_info_msg_to_intrinsics, image_msg_to_array, transform_msg_to_matrix

    sim, probe, ex = rig()
    assert spin(ex, lambda: all(k in probe.msgs for k in TOPICS), timeout_s=20.0), sorted(probe.msgs)
    m = probe.msgs
    ref, T_ref = reference()
    cam = ref.cameras[0]
    assert m["rgb"].encoding == "rgb8" and (m["rgb"].height, m["rgb"].width) == cam.rgb.shape[:2]
    assert m["depth"].encoding == "16UC1"
    for key in ("rgb", "depth", "info"):
        assert m[key].header.frame_id == "camera_color_optical_frame"
    info = camera_info_msg_to_intrinsics(m["info"])
    np.testing.assert_allclose(info.K, cam.K, atol=1e-9)
    # depth in millimetres on the wire, metres after decoding; the platform's top centre is at its known depth
    raw = np.frombuffer(bytes(m["depth"].data), np.uint16).reshape(m["depth"].height, m["depth"].width)
    depth_m = image_msg_to_array(m["depth"])
    scene = sim_scene(sim)
    top = np.r_[scene.platform_xy, scene.platform_height_m, 1.0]
    p_cam = np.linalg.inv(T_ref) @ top
    u, v = np.round((cam.K @ p_cam[:3])[:2] / p_cam[2]).astype(int)
    assert raw[v, u] == pytest.approx(1000 * p_cam[2], abs=10)
    assert depth_m[v, u] == pytest.approx(p_cam[2], abs=0.01)
    # tf: base -> optical frame equals the camera pose; /tf carries the TCP
    (static,) = m["tf_static"].transforms
    assert (static.header.frame_id, static.child_frame_id) == ("base", "camera_color_optical_frame")
    np.testing.assert_allclose(transform_msg_to_matrix(static.transform), T_ref, atol=1e-6)
    assert m["tf"].transforms[0].child_frame_id == "fr3_hand_tcp"
    assert list(m["joints"].name) == [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1",
                                                                                 "fr3_finger_joint2"]
    assert list(m["fingers"].name) == ["fr3_finger_joint1", "fr3_finger_joint2"]
    assert sum(m["fingers"].position) == pytest.approx(0.08, abs=2e-3)  # starts open
    assert m["pose"].header.frame_id == "base" and m["pose"].pose.orientation.x == pytest.approx(1.0, abs=1e-3)
    assert m["instruction"].data == ref.instruction and m["instruction"].data


def sim_scene(sim):
    from vla_ros.sim.tasks import sample_episode

    return sample_episode(np.random.default_rng(sim.cfg.seed), sim.cfg.task, width=sim.cfg.width,
                          height=sim.cfg.height).scene


def test_depth_as_32fc1_metres(rig, spin):
    from vla_ros.ros.msg_conversions import image_msg_to_array

    sim, probe, ex = rig(depth_encoding="32FC1")
    assert spin(ex, lambda: "depth" in probe.msgs, timeout_s=20.0)
    assert probe.msgs["depth"].encoding == "32FC1"
    ref, _ = reference()
    d = image_msg_to_array(probe.msgs["depth"])
    ok = ref.cameras[0].depth_valid
    np.testing.assert_allclose(d[ok], ref.cameras[0].depth_m[ok], atol=0.02)  # the arm may have moved a little


def test_target_pose_and_gripper_actions_move_the_robot(rig, spin):
    from franka_msgs.action import Grasp, Move
    from rclpy.action import ActionClient

    from vla_ros.core.observation_feed import pose_fields_to_array

    sim, probe, ex = rig()
    assert spin(ex, lambda: "pose" in probe.msgs, timeout_s=20.0)
    goal = np.array([0.5, 0.1, 0.2])

    def at_goal():
        probe.send_target(goal)
        return np.linalg.norm(pose_fields_to_array(probe.msgs["pose"].pose)[:3] - goal) < 3e-3

    assert spin(ex, at_goal, timeout_s=10.0)
    probe.send_target([0.5, 0.1, 0.2], frame="camera_color_optical_frame")  # wrong frame: rejected, node keeps going
    assert spin(ex, lambda: sim.counters["rejected_targets"] > 0, timeout_s=5.0)
    grasp, move = ActionClient(probe.node, Grasp, "/franka_gripper/grasp"), ActionClient(probe.node, Move,
                                                                                          "/franka_gripper/move")
    assert grasp.wait_for_server(timeout_sec=10.0) and move.wait_for_server(timeout_sec=10.0)
    g = Grasp.Goal(width=0.0, speed=0.1, force=20.0)
    g.epsilon.inner = g.epsilon.outer = 0.005
    fut = grasp.send_goal_async(g)
    assert spin(ex, lambda: fut.done(), timeout_s=10.0)
    res = fut.result().get_result_async()
    assert spin(ex, lambda: res.done(), timeout_s=10.0)
    assert res.result().result.success  # closed on nothing: width 0 within epsilon
    assert spin(ex, lambda: sum(probe.msgs["fingers"].position) < 2e-3, timeout_s=5.0)
    fut = move.send_goal_async(Move.Goal(width=0.06, speed=0.1))
    assert spin(ex, lambda: fut.done(), timeout_s=10.0)
    res = fut.result().get_result_async()
    assert spin(ex, lambda: res.done(), timeout_s=10.0)
    assert spin(ex, lambda: abs(sum(probe.msgs["fingers"].position) - 0.06) < 2e-3, timeout_s=5.0)
    grasp.destroy()
    move.destroy()


def test_observation_frontend_assembles_the_sim_franka_observation(rig, spin):
    from vla_ros.ros.observation_frontend import ObservationFrontend
    from vla_ros.runtime_config import load_runtime_config

    sim, probe, ex = rig()
    cfg = load_runtime_config("sim_franka")
    frontend = ObservationFrontend(probe.node, cfg.observation)
    ref, T_ref = reference()
    state = {}

    def valid():
        obs = frontend.latest(probe.node.get_clock().now().nanoseconds * 1e-9)
        state["obs"] = obs
        return obs.valid and obs.cameras and obs.cameras[0].depth_m is not None and \
            obs.cameras[0].T_base_camera is not None

    assert spin(ex, valid, timeout_s=20.0), state.get("obs") and state["obs"].reasons
    obs = state["obs"]
    assert obs.instruction == ref.instruction
    assert obs.proprio.shape == (8,)  # 7 arm joints + a finger, from the merged /joint_states
    np.testing.assert_allclose(obs.proprio, ref.proprio, atol=0.05)
    np.testing.assert_allclose(obs.cameras[0].T_base_camera, T_ref, atol=1e-6)
    np.testing.assert_allclose(obs.cameras[0].K, ref.cameras[0].K, atol=1e-9)
    assert obs.ee_pose is not None and obs.ee_pose[0, 2] == pytest.approx(0.25, abs=0.01)


def test_reset_starts_a_new_episode_with_its_instruction_and_camera(rig, spin):
    from vla_ros.ros.msg_conversions import transform_msg_to_matrix

    sim, probe, ex = rig()
    assert spin(ex, lambda: "tf_static" in probe.msgs and "instruction" in probe.msgs, timeout_s=20.0)
    first = transform_msg_to_matrix(probe.msgs["tf_static"].transforms[0].transform)
    instruction = sim.reset(11, "pick_by_distance")
    _, T_ref = reference(11, "pick_by_distance")

    def moved():
        T = transform_msg_to_matrix(probe.msgs["tf_static"].transforms[0].transform)
        return probe.msgs["instruction"].data == instruction and np.allclose(T, T_ref, atol=1e-6)

    assert spin(ex, moved, timeout_s=10.0)  # the new camera pose is re-latched on /tf_static
    assert not np.allclose(first, T_ref, atol=1e-3) and not sim.success()
    assert sim.episode_task == "pick_by_distance" and sim.sim_time_s < 1.0  # simulated time restarts
