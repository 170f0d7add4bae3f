"""Shared launch description: policy node (lifecycle, auto configure + activate) + executor/adapter of one robot.

Arguments: checkpoint, instruction, config (robot YAML name or path), actuate (default false = dry run),
device, esm (a released FALCON checkpoint's ESM folder), backend and url (a policy server on another
machine; its key from the YAML or $VLA_ROS_API_KEY).
Included by <robot>.launch.py with the robot's config. Every process it starts gets vla_ros's Fast DDS
profile (large shared-memory segment for camera frames, loopback UDP) unless FASTDDS_DEFAULT_PROFILES_FILE is
already set; include your camera driver's launch after it so the driver publishes with the same profile.
"""
import os

from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler, SetEnvironmentVariable
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription
from vla_ros.dds import PROFILE_VARS, apply_dds_defaults


def robot_launch(default_config: str, default_checkpoint: str | None = None,
                 default_actuate: str = "false") -> LaunchDescription:
    ckpt = {"default_value": default_checkpoint or ""}  # "" with a local backend: configure names the gap
    args = [
        DeclareLaunchArgument("config", default_value=default_config, description="robot YAML (name or path)"),
        DeclareLaunchArgument("checkpoint", description="local checkpoint folder", **ckpt),
        DeclareLaunchArgument("instruction", default_value="", description="task instruction"),
        DeclareLaunchArgument("actuate", default_value=default_actuate, description="send commands to the controller"),
        DeclareLaunchArgument("device", default_value="", description="cpu or cuda (default: the YAML's)"),
        DeclareLaunchArgument("backend", default_value="", description="local | openpi | openvla_oft (default: YAML)"),
        DeclareLaunchArgument("url", default_value="", description="policy server URL of a remote backend"),
        DeclareLaunchArgument("esm", default_value="", description="a released FALCON checkpoint's ESM folder"),
    ]
    env = dict(os.environ)  # the same decision as every vla_ros process (a profile the user set is kept)
    profile = apply_dds_defaults(env)
    dds = [SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE", env["ROS_AUTOMATIC_DISCOVERY_RANGE"])]
    if profile:
        dds.append(SetEnvironmentVariable(PROFILE_VARS[0], profile))
    policy = LifecycleNode(
        package="vla_ros", executable="policy_node", name="vla_policy", namespace="", output="screen",
        parameters=[{"config": LaunchConfiguration("config"), "checkpoint": LaunchConfiguration("checkpoint"),
                     "instruction": LaunchConfiguration("instruction"), "device": LaunchConfiguration("device"),
                     "backend": LaunchConfiguration("backend"), "url": LaunchConfiguration("url"),
                     "esm": LaunchConfiguration("esm")}])
    executor = Node(package="vla_ros", executable="executor_node", name="vla_executor", output="screen",
                    parameters=[{"config": LaunchConfiguration("config"), "actuate": LaunchConfiguration("actuate")}])
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(policy),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=policy, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(policy),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription([*args, *dds, policy, executor, activate, configure])
