"""Shared launch description: policy node (lifecycle, auto configure + activate) + executor/adapter of one robot.

Arguments: checkpoint, instruction, config (robot YAML name or path), actuate (default false = dry run),
device, esm (a released FALCON checkpoint's ESM folder). Included by <robot>.launch.py with the robot's config.
"""
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from launch import LaunchDescription


def robot_launch(default_config: str, default_checkpoint: str | None = None,
                 default_actuate: str = "false") -> LaunchDescription:
    ckpt = {} if default_checkpoint is None else {"default_value": default_checkpoint}
    args = [
        DeclareLaunchArgument("config", default_value=default_config, description="robot YAML (name or path)"),
        DeclareLaunchArgument("checkpoint", description="local checkpoint folder", **ckpt),
        DeclareLaunchArgument("instruction", default_value="", description="task instruction"),
        DeclareLaunchArgument("actuate", default_value=default_actuate, description="send commands to the controller"),
        DeclareLaunchArgument("device", default_value="", description="cpu or cuda (default: the YAML's)"),
        DeclareLaunchArgument("esm", default_value="", description="a released FALCON checkpoint's ESM folder"),
    ]
    policy = LifecycleNode(
        package="vla_ros", executable="policy_node", name="vla_policy", namespace="", output="screen",
        parameters=[{"config": LaunchConfiguration("config"), "checkpoint": LaunchConfiguration("checkpoint"),
                     "instruction": LaunchConfiguration("instruction"), "device": LaunchConfiguration("device"),
                     "esm": LaunchConfiguration("esm")}])
    executor = Node(package="vla_ros", executable="executor_node", name="vla_executor", output="screen",
                    parameters=[{"config": LaunchConfiguration("config"), "actuate": LaunchConfiguration("actuate")}])
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(policy),
                                            transition_id=Transition.TRANSITION_CONFIGURE))
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=policy, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(policy),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]))
    return LaunchDescription([*args, policy, executor, activate, configure])
