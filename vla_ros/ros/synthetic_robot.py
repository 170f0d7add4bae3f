"""A synthetic robot: publishes what a real robot's drivers publish (camera, depth, CameraInfo, joints,
end-effector pose, /tf_static, instruction) for any robot config. Used by tests, `vla-ros smoke` and benchmarks."""
from __future__ import annotations

import numpy as np

from vla_ros.core.camera import intrinsics_from_fields
from vla_ros.runtime_config import RuntimeConfig

OPTICAL = "camera_color_optical_frame"


class SyntheticRobot:
    def __init__(self, node, cfg: RuntimeConfig, instruction: str = "pick up the red block", size=(48, 64),
                 dynamic_tf: bool = False):
        from geometry_msgs.msg import TransformStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage

        from vla_ros.ros import qos
        from vla_ros.ros.tf import STATIC_QOS

        self.node, self.cfg, self.h, self.w = node, cfg, *size
        cam = cfg.observation.cameras[0]
        self.rgb = node.create_publisher(Image, cam.rgb_topic, qos.SENSOR)
        self.depth = node.create_publisher(Image, cam.depth_topic, qos.SENSOR) if cam.depth_topic else None
        self.info = node.create_publisher(CameraInfo, cam.info_topic, qos.SENSOR)
        self.joints = node.create_publisher(JointState, cfg.observation.joint_topic, qos.SENSOR)
        self.instr = node.create_publisher(String, cfg.observation.instruction_topic, qos.LATCHED)
        self.tf_static = node.create_publisher(TFMessage, "/tf_static", STATIC_QOS)
        from geometry_msgs.msg import PoseStamped

        ee = cfg.observation.ee_pose_topic or cfg.executor.measured_pose_topic
        self.ee = node.create_publisher(PoseStamped, ee, qos.SENSOR) if ee else None
        self.instr.publish(String(data=instruction))
        t = TransformStamped()
        t.header.frame_id, t.child_frame_id = cfg.observation.base_frame, OPTICAL
        t.transform.translation.x, t.transform.translation.z = 0.9, 0.6
        t.transform.rotation.x, t.transform.rotation.y = 0.0, 1.0  # looking down at the table
        self.camera_tf, self.dynamic_tf = t, dynamic_tf
        if dynamic_tf:
            self.tf = node.create_publisher(TFMessage, "/tf", 100)
        else:
            self.tf_static.publish(TFMessage(transforms=[t]))
        self.published = []

    def publish(self, camera: bool = True, tf: bool = True) -> float:
        """One frame of everything; `camera=False` stops the camera, `tf=False` stops the dynamic tf."""
        from sensor_msgs.msg import JointState
        from tf2_msgs.msg import TFMessage

        from vla_ros.ros.msg_conversions import array_to_image_msg, intrinsics_to_camera_info_msg, s_to_stamp

        now = self.node.get_clock().now().nanoseconds * 1e-9
        if camera:
            rgb = np.zeros((self.h, self.w, 3), np.uint8)
            rgb[10:20, 20:30, 0] = 255
            self.rgb.publish(array_to_image_msg(rgb, "rgb8", now, OPTICAL))
            if self.depth is not None:
                depth = np.full((self.h, self.w), 0.6, np.float32)
                self.depth.publish(array_to_image_msg(depth, "16UC1", now, OPTICAL))
            f = 0.8 * self.w
            intr = intrinsics_from_fields([f, 0, (self.w - 1) / 2, 0, f, (self.h - 1) / 2, 0, 0, 1], [], self.w,
                                          self.h)
            self.info.publish(intrinsics_to_camera_info_msg(intr, now, OPTICAL))
        if self.dynamic_tf and tf:
            self.camera_tf.header.stamp = s_to_stamp(now)
            self.tf.publish(TFMessage(transforms=[self.camera_tf]))
        names = self.cfg.observation.joint_names
        js = JointState(name=list(names), position=[0.0] * len(names))
        js.header.stamp = s_to_stamp(now)
        self.joints.publish(js)
        if self.ee is not None:
            from geometry_msgs.msg import PoseStamped

            pose = PoseStamped()
            pose.header.stamp, pose.header.frame_id = s_to_stamp(now), self.cfg.observation.base_frame
            p, q = resting_pose(self.cfg)
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in p)
            pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z, pose.pose.orientation.w = q
            self.ee.publish(pose)
        self.published.append(now)
        return now


def resting_pose(cfg: RuntimeConfig) -> tuple[np.ndarray, list[float]]:
    """The synthetic arm's end-effector pose: the middle of the workspace box, the tool at rest as the robot's
    adapter has it (pointing down; a WidowX's forward, its identity orientation), which is also the tiny
    checkpoints' rotation reference."""
    from vla_ros.adapters.registry import adapter_class

    s = cfg.executor.safety
    centre = (np.asarray(s.workspace_min_m) + np.asarray(s.workspace_max_m)) / 2
    return centre, list(adapter_class(cfg.adapter.robot).rest_quat_xyzw)


def tiny_checkpoint(tmp_path, cfg: RuntimeConfig, method: str = "falcon") -> str:
    import torch

    from vla_ros.policies.checkpoint_io import save_checkpoint
    from vla_ros.policies.factory import make_policy, tiny_config

    torch.manual_seed(0)
    pc = tiny_config(method, arm_names=list(cfg.executor.arm_names), proprio_dim=len(cfg.observation.joint_names),
                     camera_names=[cfg.observation.cameras[0].name],
                     rotation_ref_quat_xyzw=resting_pose(cfg)[1])
    out = tmp_path / f"ckpt_{cfg.robot}_{method}"
    save_checkpoint(make_policy(pc, workspace_norm_stats(pc, cfg)), out)
    return str(out)


def workspace_norm_stats(pc, cfg: RuntimeConfig):
    """Norm stats whose action range is the middle of the robot's workspace, so an untrained policy's
    outputs (near the centre of the normalized range) are plausible targets there."""
    from vla_ros.core.actions import poses_to_actions
    from vla_ros.core.normalize import NormStats

    rng = np.random.default_rng(0)
    lo, hi = np.asarray(cfg.executor.safety.workspace_min_m), np.asarray(cfg.executor.safety.workspace_max_m)
    mid, half = (lo + hi) / 2, (hi - lo) / 8
    n, A = 256, len(pc.arm_names)
    pos = mid + rng.uniform(-1, 1, (n, A, 3)) * half
    quat = np.tile(np.asarray(pc.rotation_ref_quat_xyzw, float), (n, A, 1))
    act = poses_to_actions(pos, quat, rng.uniform(0, 1, (n, A)), pc.rotation_ref_quat_xyzw).reshape(n, -1)
    act[:, 3::7] += rng.normal(0, 0.01, (n, A))
    mask = np.ones(act.shape[1], bool)
    mask[6::7] = False
    return NormStats.from_arrays({"action": act, "proprio": rng.normal(0, 0.1, (n, pc.proprio_dim))}, {"action": mask})


def main(argv=None) -> int:
    """`python -m vla_ros.ros.synthetic_robot --config franka --camera-hz 30 --joint-hz 500 --seconds 120`:
    a synthetic robot in its own process (soak tests, demos without hardware)."""
    import argparse
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    from vla_ros.ros import qos
    from vla_ros.ros.msg_conversions import s_to_stamp
    from vla_ros.runtime_config import load_runtime_config

    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="franka")
    ap.add_argument("--camera-hz", type=float, default=30.0)
    ap.add_argument("--joint-hz", type=float, default=500.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"))
    args = ap.parse_args(argv)
    cfg = load_runtime_config(args.config)
    rclpy.init()
    node = rclpy.create_node("vla_synthetic_robot")
    robot = SyntheticRobot(node, cfg, size=tuple(args.size))
    joints = node.create_publisher(JointState, cfg.observation.joint_topic, qos.SENSOR)
    names = list(cfg.observation.joint_names)
    counts = {"frames": 0, "joints": 0}

    def joint_tick():
        js = JointState(name=names, position=[0.0] * len(names))
        js.header.stamp = s_to_stamp(node.get_clock().now().nanoseconds * 1e-9)
        joints.publish(js)
        counts["joints"] += 1

    def frame_tick():
        robot.publish()
        counts["frames"] += 1

    node.create_timer(1.0 / args.joint_hz, joint_tick)
    node.create_timer(1.0 / args.camera_hz, frame_tick)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    t0 = time.monotonic()
    try:
        while rclpy.ok() and time.monotonic() < t0 + args.seconds:
            ex.spin_once(timeout_sec=0.01)
    except Exception:  # SIGTERM/SIGINT shut the context down under spin_once: stop quietly
        pass
    dt = max(time.monotonic() - t0, 1e-9)
    print(f"synthetic robot: {counts['frames'] / dt:.1f} Hz frames, {counts['joints'] / dt:.1f} Hz joint states",
          flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
