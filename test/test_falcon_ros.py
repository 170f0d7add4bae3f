"""A released-layout FALCON (tiny widths) end to end over DDS with the WidowX config: the .ckpt + esm folder +
Kosmos-2 folder loaded by the policy node through policy.load_options and the Bridge card, chunks published,
WidowX joint commands out of the adapter."""
import sys
from pathlib import Path

import pytest
import rclpy

sys.path.insert(0, str(Path(__file__).parent))
from falcon_release import write_esm_folder, write_kosmos2_folder, write_released_ckpt  # noqa: E402
from ros_harness import drive  # noqa: E402

from vla_ros.ros.synthetic_robot import SyntheticRobot  # noqa: E402
from vla_ros.runtime_config import load_runtime_config  # noqa: E402

pytestmark = pytest.mark.ros


def test_released_falcon_runs_on_widowx_over_dds(tmp_path, ros_context, robot_interfaces):
    import json

    from interbotix_xs_msgs.msg import JointGroupCommand

    from vla_ros.msg import ActionChunk
    from vla_ros.ros.launch_set import RobotStack

    kosmos = write_kosmos2_folder(tmp_path / "kosmos-2-patch14-224")
    esm, _ = write_esm_folder(tmp_path / "esm")
    ckpt = tmp_path / "falcon-esm-fc-simpler-bridge" / "ckpts" / "falcon.ckpt"
    ckpt.parent.mkdir(parents=True)
    write_released_ckpt(ckpt)
    stats = {"action": {"q01": [-0.01, -0.01, -0.01, -0.05, -0.05, -0.05, 0.0],
                        "q99": [0.01, 0.01, 0.01, 0.05, 0.05, 0.05, 1.0]}}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    from vla_ros.core.config import from_dict, to_dict
    from vla_ros.runtime_config import RuntimeConfig

    # the WidowX YAML plus a measured end-effector pose (e.g. from a forward-kinematics node): delta chunks are
    # composed with it (without one the executor refuses them, naming the reason)
    base = to_dict(load_runtime_config("widowx"))
    cfg = from_dict(RuntimeConfig, {**base, "executor": {**base["executor"], "measured_pose_topic": "/wx250s/ee_pose"}})
    opts = {"kosmos2": str(kosmos), "card": "falcon-fc-simpler-bridge", "statistics": str(tmp_path / "stats.json")}
    node = rclpy.create_node("fake_widowx", context=ros_context)
    fake = SyntheticRobot(node, cfg)
    commands, chunks = [], []
    node.create_subscription(JointGroupCommand, cfg.adapter.command_topics[0], commands.append, 50)
    node.create_subscription(ActionChunk, cfg.policy.chunk_topic, chunks.append, 50)
    stack = RobotStack(cfg, checkpoint=str(ckpt), actuate=True, context=ros_context, device="cpu",
                       load_options={**opts, "esm": str(esm)})
    try:
        assert stack.start(), stack.policy.last_error
        ok = drive(ros_context, node, fake, lambda: len(chunks) >= 3 and len(commands) >= 3, timeout_s=60.0)
        assert ok, f"chunks {len(chunks)}, commands {len(commands)}, reasons {stack.policy.last_reasons}, " \
                   f"counters {dict(stack.executor_node.core.counters)}"
    finally:
        stack.stop()
        node.destroy_node()
    c = chunks[-1]
    assert c.policy_name == "falcon-fc-simpler-bridge" and c.reference == ActionChunk.REFERENCE_DELTA_TARGET
    assert c.horizon == 5 and abs(c.dt_s - 0.2) < 1e-9
    assert list(c.modalities) == ["rgb"] and c.method == "falcon"
    assert commands[-1].name == "arm" and len(commands[-1].cmd) == 6


def test_policy_node_takes_the_esm_folder_as_a_parameter(tmp_path, ros_context, robot_interfaces):
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from vla_ros.core.config import from_dict, to_dict
    from vla_ros.ros.nodes.policy_node import PolicyNode
    from vla_ros.runtime_config import RuntimeConfig

    kosmos = write_kosmos2_folder(tmp_path / "kosmos")
    esm, _ = write_esm_folder(tmp_path / "esm")
    write_released_ckpt(tmp_path / "falcon.ckpt")
    base = to_dict(load_runtime_config("widowx"))
    cfg = from_dict(RuntimeConfig, {**base, "policy": {**base["policy"], "load_options": {"kosmos2": str(kosmos)}}})
    node = PolicyNode(cfg, context=ros_context, parameter_overrides=[
        Parameter("checkpoint", value=str(tmp_path / "falcon.ckpt")), Parameter("esm", value=str(esm))])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.last_error
        assert type(node.policy).__name__ == "FalconReferencePolicy"
        assert node.cfg.policy.load_options == {"kosmos2": str(kosmos), "esm": str(esm)}
        node.trigger_cleanup()
    finally:
        node.destroy_node()
