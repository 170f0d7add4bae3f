"""One observation assembler for the simulator, bags and the robot: the simulator's sensors at one instant, as
the simulator builds its observation, as a bag holds them (CDR through the bag reader's typestore) and as the
live frontend receives them over DDS, give the same Observation, and each path goes through ObservationFeed."""
import numpy as np
import pytest
from ros_harness import spinning

from vla_ros.core.observation_feed import ObservationFeed

pytestmark = pytest.mark.ros
OPTICAL = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def env():
    from vla_ros.sim.env import SimConfig, SimEnv

    try:
        e = SimEnv(SimConfig())
        e.reset(4)
    except Exception as exc:
        pytest.skip(f"MuJoCo cannot render headless here: {exc}")
    for _ in range(2):  # a stamp that is not 0, a moved gripper
        e.step(e.ee_pose()[:3] + [0.02, -0.01, 0.0], gripper=0.5)
    yield e
    e.close()


@pytest.fixture
def assembled(monkeypatch):
    """Counts ObservationFeed.assemble calls (the real method runs)."""
    calls = []
    real = ObservationFeed.assemble

    def assemble(self, now_s):
        calls.append(now_s)
        return real(self, now_s)

    monkeypatch.setattr(ObservationFeed, "assemble", assemble)
    return calls


def sensor_messages(env, obs):
    """(topic, message) of what the sim node publishes for this instant, in a driver's order, plus /tf_static
    with the camera pose, as rclpy messages; the depth as 32FC1 metres."""
    from geometry_msgs.msg import PoseStamped, TransformStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from tf2_msgs.msg import TFMessage

    from vla_ros.ros.msg_conversions import (
        array_to_image_msg,
        array_to_pose_msg,
        intrinsics_to_camera_info_msg,
        matrix_to_transform_msg,
        s_to_stamp,
    )
    from vla_ros.sim import franka
    from vla_ros.sim.env import OBSERVATION

    cam, t = obs.cameras[0], env.time_s
    tf = TransformStamped(child_frame_id=OPTICAL, transform=matrix_to_transform_msg(env.T_base_camera()))
    tf.header.frame_id = OBSERVATION.base_frame
    q = [float(v) for v in np.r_[env.q, env.finger_positions_m()]]
    # velocity and effort filled, as franka_ros2 does: rosbags refuses rclpy's CDR of a JointState whose last
    # arrays are empty (8 trailing bytes), so a bag would drop those
    js = JointState(name=franka.JOINT_NAMES + franka.FINGER_NAMES, position=q, velocity=[0.0] * len(q),
                    effort=[0.0] * len(q))
    pose = PoseStamped(pose=array_to_pose_msg(env.ee_pose()))
    js.header.stamp = pose.header.stamp = s_to_stamp(t)
    c = OBSERVATION.cameras[0]
    return [("/tf_static", TFMessage(transforms=[tf])),
            (OBSERVATION.instruction_topic, String(data=env.instruction)),
            (c.info_topic, intrinsics_to_camera_info_msg(env.camera.intrinsics(), t, OPTICAL)),
            (OBSERVATION.joint_topic, js), (OBSERVATION.ee_pose_topic, pose),
            (c.rgb_topic, array_to_image_msg(cam.rgb, "rgb8", t, OPTICAL)),
            (c.depth_topic, array_to_image_msg(cam.depth_m, "32FC1", t, OPTICAL))]


def bag_observation(messages):
    """The messages as a bag gives them back (CDR, deserialized by rosbags), through the bag reader."""
    from rclpy.serialization import serialize_message

    from vla_ros.data.bag_observations import BagObservations
    from vla_ros.data.bags import typestore
    from vla_ros.sim.env import OBSERVATION

    store, reader, out = typestore(), BagObservations(OBSERVATION), []
    for topic, msg in messages:
        msgtype = type(msg).__module__.split(".")[0] + "/msg/" + type(msg).__name__
        obs = reader.feed(topic, store.deserialize_cdr(serialize_message(msg), msgtype))
        out += [obs] if obs is not None else []
    assert len(out) == 1, dict(reader.rejected)
    return out[0]


def live_observation(ctx, messages, stamp_s):
    """The messages published over DDS to the live frontend (sensor QoS: re-sent until they land)."""
    import rclpy

    from vla_ros.ros import qos
    from vla_ros.ros.observation_frontend import MSG_TYPES, ObservationFrontend
    from vla_ros.ros.tf import STATIC_QOS
    from vla_ros.sim.env import OBSERVATION

    node = rclpy.create_node("paths_frontend", context=ctx)
    robot = rclpy.create_node("paths_sim", context=ctx)
    frontend = ObservationFrontend(node, OBSERVATION)
    kinds = {s.topic: s.kind for s in frontend.feed.sources()}
    pubs = {topic: robot.create_publisher(type(msg), topic, STATIC_QOS if topic == "/tf_static" else
                                          qos.LATCHED if kinds[topic] == "instruction" else qos.SENSOR)
            for topic, msg in messages}
    assert all(type(m) is MSG_TYPES[kinds[t]] for t, m in messages if t in kinds)
    for topic in ("/tf_static", OBSERVATION.instruction_topic):
        pubs[topic].publish(dict(messages)[topic])
    complete = {}

    def landed():
        obs = frontend.latest(stamp_s)
        cams = obs.cameras
        complete["obs"] = obs
        return obs.valid and cams and cams[0].depth_m is not None and cams[0].T_base_camera is not None

    with spinning(ctx, node, robot) as ex:
        for _ in range(400):  # at most ~40 s
            if landed():
                break
            for topic, msg in messages[2:]:
                pubs[topic].publish(msg)
            for _ in range(5):
                ex.spin_once(timeout_sec=0.02)
    assert landed(), complete["obs"].reasons
    assert not frontend.rejected, frontend.last_errors
    return complete["obs"]


def assert_same(a, b, what):
    assert a.valid and b.valid, (what, a.reasons, b.reasons)
    assert a.stamp_s == pytest.approx(b.stamp_s, abs=1e-9), what
    assert (a.instruction, a.proprio_names, a.reasons) == (b.instruction, b.proprio_names, b.reasons), what
    assert a.proprio.dtype == b.proprio.dtype and np.array_equal(a.proprio, b.proprio), what
    np.testing.assert_array_equal(a.ee_pose, b.ee_pose, err_msg=what)
    assert a.ages_s.keys() == b.ages_s.keys(), what
    assert all(abs(a.ages_s[k] - b.ages_s[k]) < 1e-9 for k in a.ages_s), (what, a.ages_s, b.ages_s)
    assert [c.name for c in a.cameras] == [c.name for c in b.cameras], what
    for ca, cb in zip(a.cameras, b.cameras):
        for field in ("rgb", "K", "depth_m", "depth_valid"):
            x, y = getattr(ca, field), getattr(cb, field)
            assert x.dtype == y.dtype and np.array_equal(x, y), (what, field)
        np.testing.assert_allclose(ca.T_base_camera, cb.T_base_camera, atol=1e-12, err_msg=what)  # via a quaternion


def test_sim_bag_and_live_paths_build_the_same_observation(env, assembled, ros_context, robot_interfaces):
    sim = env.observation()
    assert len(assembled) == 1 and sim.valid, sim.reasons
    messages = sensor_messages(env, sim)
    bag = bag_observation(messages)
    assert len(assembled) == 2
    assert_same(sim, bag, "sim vs bag")
    live = live_observation(ros_context, messages, bag.stamp_s)
    assert len(assembled) > 2
    assert_same(sim, live, "sim vs live")
    assert {"rgb/front", "depth/front", "joints", "ee_pose"} <= set(sim.ages_s)


def test_the_simulators_observation_is_the_one_the_sim_robot_config_assembles():
    from vla_ros.runtime_config import load_runtime_config
    from vla_ros.sim.env import OBSERVATION

    robot = load_runtime_config("sim_franka").observation
    fields = ("joint_names", "joint_topic", "ee_pose_topic", "instruction_topic", "base_frame")
    assert {f: getattr(OBSERVATION, f) for f in fields} == {f: getattr(robot, f) for f in fields}
    cams = lambda cfg: [(c.name, c.rgb_topic, c.info_topic, c.depth_topic) for c in cfg.cameras]  # noqa: E731
    assert cams(OBSERVATION) == cams(robot)
