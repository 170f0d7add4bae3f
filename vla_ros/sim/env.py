"""The simulated Franka-like tabletop as an environment: reset(seed, task) -> Observation, step(target pose,
gripper) -> Observation, success(). numpy + mujoco only; the ROS node (vla_ros/ros/nodes/sim_node.py) wraps it.

The floating gripper follows its Cartesian target with a speed limit (a stand-in for the robot's Cartesian
controller); `proprio` holds the 7 joint angles of a Franka whose TCP is at the gripper (IK) and the first
finger joint, as the real robot's merged /joint_states would give.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.config import check, check_range
from vla_ros.core.constants import TOOL_DOWN_QUAT_XYZW, UNIT_QUAT_TOL_STRICT
from vla_ros.core.observation_feed import ObservationFeed
from vla_ros.core.sync import CameraConfig, ObservationConfig
from vla_ros.core.transforms import canonical_quat, pose_to_matrix, quat_angle_rad, slerp
from vla_ros.core.types import Observation
from vla_ros.sim import franka
from vla_ros.sim.scene import CAMERA, FINGER_MAX_M, build_mjcf
from vla_ros.sim.tasks import TASKS, CameraRange, Episode, check_success, sample_episode

PROPRIO_NAMES = [*franka.JOINT_NAMES, franka.FINGER_NAMES[0]]  # 7 arm joints (rad) + one finger (m, half the width)

# What the simulator's sensors make an observation of: the camera, joints and TCP pose the sim node publishes
# (config/sim_franka.yaml's observation), assembled by the ObservationFeed a robot's and a bag's go through.
OBSERVATION = ObservationConfig(
    cameras=[CameraConfig(name=CAMERA, rgb_topic="/camera/color/image_raw", info_topic="/camera/color/camera_info",
                          depth_topic="/camera/aligned_depth_to_color/image_raw")],
    joint_names=list(PROPRIO_NAMES), joint_topic="/joint_states", ee_pose_topic="/current_pose",
    instruction_topic="/vla/instruction", base_frame="base")


@dataclass
class SimConfig:
    """Args:
    width / height: camera image size (pixels).
    dt_s: default simulated time per step().
    max_speed_m_s / max_speed_rad_s: how fast the gripper follows its target.
    max_steps: episode length limit in step() calls of dt_s (used by rollouts).
    depth_max_m: depth beyond this is marked invalid (0).
    settle_s: physics time at reset for the blocks to come to rest.
    camera: camera pose randomisation range.
    """

    width: int = 128
    height: int = 96
    dt_s: float = 0.1
    max_speed_m_s: float = 0.5
    max_speed_rad_s: float = 2.0
    max_steps: int = 150
    depth_max_m: float = 3.0
    settle_s: float = 0.3
    camera: CameraRange = field(default_factory=CameraRange)

    def __post_init__(self):
        check_range("width", self.width, 16, 4096)
        check_range("height", self.height, 16, 4096)
        check_range("dt_s", self.dt_s, 0.002, 10.0)
        check(self.max_speed_m_s > 0, "max_speed_m_s", self.max_speed_m_s, "must be positive")


class SimEnv:
    def __init__(self, config: SimConfig | None = None):
        from vla_ros.sim.camera import select_gl_backend

        select_gl_backend()
        self.config = config or SimConfig()
        self.model = self.data = self.camera = self.episode = None
        self.q = franka.Q_HOME.copy()

    # --- episode ----------------------------------------------------------------------------------------
    def reset(self, seed: int, task: str | None = None) -> Observation:
        """A new episode of `task` (default: chosen by the seed) with everything drawn from `seed`."""
        import mujoco

        from vla_ros.sim.camera import RGBDCamera

        rng = np.random.default_rng(seed)
        task = task or TASKS[int(rng.integers(len(TASKS)))]
        self.episode: Episode = sample_episode(rng, task, self.config.camera, self.config.width, self.config.height)
        self.close()
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(self.episode.scene))
        self.data = mujoco.MjData(self.model)
        self.camera = RGBDCamera(self.model, CAMERA, self.config.width, self.config.height)
        self._mocap = self.model.body("ee_target").mocapid[0]
        self._ee = self.model.body("ee").id
        self._fingers = [self.model.geom(f"finger_{s}").id for s in ("left", "right")]
        self._blocks = {c: self.model.geom(f"block_{c}").id for c in self.episode.scene.blocks}
        self.target_pos = self.data.mocap_pos[self._mocap].copy()
        self.target_quat = np.array(TOOL_DOWN_QUAT_XYZW)
        self.gripper_cmd = 1.0
        self.q = franka.Q_HOME.copy()
        self._apply_gripper()
        mujoco.mj_forward(self.model, self.data)
        self._advance(self.config.settle_s)
        self.data.time = 0.0
        self._update_joints()
        self.ever_succeeded = False
        return self.observation()

    @property
    def instruction(self) -> str:
        return self.episode.instruction if self.episode else ""

    def step(self, position_m, quat_xyzw=None, gripper: float | None = None, dt_s: float | None = None,
             render: bool = True) -> Observation | None:
        """Sets the gripper's target pose (base frame) and opening (1 open .. 0 closed; None = unchanged), then
        simulates dt_s. Returns the observation after it (None when render=False)."""
        self.set_target(position_m, quat_xyzw, gripper)
        self._advance(self.config.dt_s if dt_s is None else dt_s)
        self._update_joints()
        self.ever_succeeded = self.ever_succeeded or self.success()
        return self.observation() if render else None

    def set_target(self, position_m, quat_xyzw=None, gripper: float | None = None) -> None:
        p = np.asarray(position_m, float).reshape(3)
        if not np.all(np.isfinite(p)):
            raise ValueError(f"position_m: not finite: {p}")
        self.target_pos = p
        if quat_xyzw is not None:
            q = np.asarray(quat_xyzw, float).reshape(4)
            if not np.all(np.isfinite(q)) or abs(np.linalg.norm(q) - 1.0) > UNIT_QUAT_TOL_STRICT:
                raise ValueError(f"quat_xyzw: not a unit quaternion: {q}")
            self.target_quat = canonical_quat(q)
        if gripper is not None:
            self.gripper_cmd = float(np.clip(gripper, 0.0, 1.0))
            self._apply_gripper()

    def set_gripper_width(self, width_m: float) -> None:
        """Opening width command in metres (what a Franka gripper Move/Grasp goal asks for)."""
        self.gripper_cmd = float(np.clip(width_m / (2 * FINGER_MAX_M), 0.0, 1.0))
        self._apply_gripper()

    def _apply_gripper(self) -> None:
        self.data.ctrl[:] = self.gripper_cmd * FINGER_MAX_M

    def _advance(self, duration_s: float) -> None:
        import mujoco

        h = self.model.opt.timestep
        dp_max, dr_max = self.config.max_speed_m_s * h, self.config.max_speed_rad_s * h
        target_wxyz = np.r_[self.target_quat[3], self.target_quat[:3]]
        for _ in range(max(1, int(round(duration_s / h)))):
            pos = self.data.mocap_pos[self._mocap]
            d = self.target_pos - pos
            n = float(np.sqrt(d @ d))
            if n > 0.0:
                self.data.mocap_pos[self._mocap] = self.target_pos if n <= dp_max else pos + d * (dp_max / n)
            cur = self.data.mocap_quat[self._mocap]
            if abs(float(cur @ target_wxyz)) < 1.0 - 1e-12:  # not yet at the target orientation
                w, x, y, z = cur
                ang = float(quat_angle_rad(np.array([x, y, z, w]), self.target_quat))
                q = slerp(np.array([x, y, z, w]), self.target_quat, min(1.0, dr_max / max(ang, 1e-12)))
                self.data.mocap_quat[self._mocap] = [q[3], q[0], q[1], q[2]]
            mujoco.mj_step(self.model, self.data)

    def _update_joints(self) -> None:
        q, _ = franka.inverse(pose_to_matrix(*self.ee_pose_split()), self.q)
        self.q = q

    # --- state ------------------------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        return float(self.data.time)

    def ee_pose_split(self) -> tuple[np.ndarray, np.ndarray]:
        w, x, y, z = self.data.xquat[self._ee]
        return self.data.xpos[self._ee].copy(), canonical_quat(np.array([x, y, z, w]))

    def ee_pose(self) -> np.ndarray:
        """(7,) TCP pose in the base frame: xyz + quaternion xyzw."""
        return np.concatenate(self.ee_pose_split())

    def finger_positions_m(self) -> np.ndarray:
        """The two finger joints (distance of each finger from the centre), as Franka's gripper reports them."""
        return np.array([self.data.joint(f"finger_joint_{s}").qpos[0] for s in ("left", "right")])

    def gripper_width_m(self) -> float:
        return float(self.finger_positions_m().sum())

    def block_positions(self) -> dict[str, np.ndarray]:
        return {c: self.data.geom_xpos[g].copy() for c, g in self._blocks.items()}

    def touching(self) -> set[str]:
        """Blocks in contact with a finger."""
        out, fingers, by_geom = set(), set(self._fingers), {g: c for c, g in self._blocks.items()}
        for con in self.data.contact[: self.data.ncon]:
            a, b = int(con.geom1), int(con.geom2)
            if a in fingers and b in by_geom:
                out.add(by_geom[b])
            elif b in fingers and a in by_geom:
                out.add(by_geom[a])
        return out

    def success(self) -> bool:
        return check_success(self.episode, self.block_positions(), self.touching())

    def T_base_camera(self) -> np.ndarray:
        from vla_ros.sim.camera import camera_pose

        return camera_pose(self.data, self.camera.cam_id)

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        return self.camera.render(self.data)

    def observation(self) -> Observation:
        """The sensors at this instant (one complete set of readings, all stamped now) through an ObservationFeed
        of OBSERVATION; the camera pose is static, as a calibration gives it."""
        rgb, depth = self.render()
        valid = (depth > 0) & (depth < self.config.depth_max_m)
        depth = np.where(valid, depth, 0.0).astype(np.float32)
        t = self.time_s
        feed = ObservationFeed(OBSERVATION)
        feed.add_camera_info(CAMERA, self.camera.intrinsics())
        feed.set_extrinsics(CAMERA, self.T_base_camera())
        feed.add_image(CAMERA, t, rgb)
        feed.add_depth(CAMERA, t, depth, valid)
        feed.add_joint_state(t, PROPRIO_NAMES, np.r_[self.q, self.finger_positions_m()[:1]])
        feed.add_ee_pose(t, self.ee_pose())
        feed.set_instruction(self.instruction)
        return feed.assemble(t)

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
            self.camera = None
