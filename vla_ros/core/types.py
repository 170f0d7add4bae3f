"""Plain data that flows through the system: observations in, action chunks out.

Units and frames are in the names: `_m` metres, `_s` seconds, `T_a_b` maps points in frame b into a.
Quaternions are (x, y, z, w), as in geometry_msgs and scipy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.constants import REFERENCES


@dataclass
class CameraObservation:
    """One camera at one instant.

    Args:
        name: camera name from the robot config (e.g. "front", "wrist").
        rgb: (H, W, 3) uint8 image.
        K: (3, 3) intrinsics for `rgb`'s resolution.
        stamp_s: image stamp.
        depth_m: optional (H, W) float32 depth in metres aligned to `rgb`; invalid pixels are 0.
        depth_valid: (H, W) bool mask, present whenever `depth_m` is.
        T_base_camera: optional (4, 4) camera pose in the base frame (optical frame convention).
    """

    name: str
    rgb: np.ndarray
    K: np.ndarray
    stamp_s: float
    depth_m: np.ndarray | None = None
    depth_valid: np.ndarray | None = None
    T_base_camera: np.ndarray | None = None


@dataclass
class Observation:
    """A time-synchronised observation, as assembled from ROS messages, a bag, or the simulator.

    Args:
        stamp_s: reference stamp (the primary camera's image stamp).
        cameras: cameras in configured order; the first is the primary.
        proprio: (D,) float32 joint positions in the configured joint order (+ gripper if configured).
        proprio_names: the joint name of each proprio value ([] = unnamed).
        instruction: natural-language task instruction.
        ee_pose: optional (A, 7) end-effector pose per arm in the base frame: xyz (m) + quaternion xyzw.
        ages_s: age of each source relative to `stamp_s` or to the assembly time (name -> seconds).
        valid: False when a required source is missing or stale; `reasons` says why.
    """

    stamp_s: float
    cameras: list[CameraObservation]
    proprio: np.ndarray
    instruction: str = ""
    ee_pose: np.ndarray | None = None
    ages_s: dict[str, float] = field(default_factory=dict)
    valid: bool = True
    reasons: list[str] = field(default_factory=list)
    proprio_names: list[str] = field(default_factory=list)


@dataclass
class ActionChunk:
    """A horizon of end-effector targets for one or more arms (mirror of vla_ros/msg/ActionChunk).

    Args:
        stamp_s: stamp of the observation the chunk was computed from.
        dt_s: step period; step t is due at stamp_s + (t + 1) * dt_s.
        frame_id: frame of the poses (robot base).
        arm_names: arms, in the order of axis 1 of the arrays.
        position_m: (T, A, 3) positions (or translation deltas).
        quat_xyzw: (T, A, 4) orientations (or rotation deltas), unit quaternions.
        gripper: (T, A) in [0, 1], 1 = open; always absolute.
        reference: "absolute", "delta_target" or "delta_measured".
        modalities: inputs the policy actually used.
        method, policy_name: provenance.
        inference_latency_s: model time for this chunk.
        seq: sequence id.
    """

    stamp_s: float
    dt_s: float
    frame_id: str
    arm_names: list[str]
    position_m: np.ndarray
    quat_xyzw: np.ndarray
    gripper: np.ndarray
    reference: str = "absolute"
    modalities: tuple[str, ...] = ()
    method: str = ""
    policy_name: str = ""
    inference_latency_s: float = 0.0
    seq: int = 0

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(f"ActionChunk.reference={self.reference!r}: expected one of {REFERENCES}")
        t, a = self.gripper.shape if self.gripper.ndim == 2 else (-1, -1)
        if self.position_m.shape != (t, a, 3) or self.quat_xyzw.shape != (t, a, 4):
            raise ValueError(
                f"ActionChunk shapes disagree: position_m {self.position_m.shape}, quat_xyzw "
                f"{self.quat_xyzw.shape}, gripper {self.gripper.shape} (expected (T,A,3), (T,A,4), (T,A))"
            )
        if a != len(self.arm_names):
            raise ValueError(f"ActionChunk.arm_names has {len(self.arm_names)} names for {a} arms")

    @property
    def horizon(self) -> int:
        return int(self.gripper.shape[0])
