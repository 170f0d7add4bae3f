"""A Franka-like tabletop in MuJoCo, built in code per episode: a table whose surface is the base frame's z = 0
plane, a floating end-effector with a parallel gripper driven through mocap (a dynamic body welded to a mocap
target, so that contacts see its velocity and friction can lift a block), coloured blocks of several sizes, a
platform of a given height, and an RGB-D camera at a given pose.

Frames: the world frame is the robot base frame ("base"): x forward, z up, origin on the table surface. The
end-effector body's origin is the tool centre point (between the fingertips); its z axis points out of the
gripper (down when the tool points down). Finger joints follow Franka: each is the distance of its finger from
the centre (0 closed, 0.04 m open), so the opening width is their sum.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_ros.core.constants import TOOL_DOWN_QUAT_XYZW

COLOURS = {"red": (0.85, 0.1, 0.1), "green": (0.1, 0.7, 0.2), "blue": (0.15, 0.3, 0.9), "yellow": (0.9, 0.8, 0.1),
           "purple": (0.55, 0.2, 0.7), "orange": (0.95, 0.5, 0.1)}
FINGER_MAX_M = 0.04  # per finger; the gripper opens to 0.08 m
FINGER_HALF_LEN_M = 0.025
TOOL_DOWN_WXYZ = (TOOL_DOWN_QUAT_XYZW[3], *TOOL_DOWN_QUAT_XYZW[:3])  # MuJoCo order
CAMERA = "front"


@dataclass
class SceneSpec:
    """One episode's scene. Args:
    blocks: colour -> half edge length (m); block bodies are named "block_<colour>".
    block_xy: colour -> (x, y) on the table (m); missing ones are lined up along y.
    platform_xy / platform_half_m / platform_height_m: a square platform (height 0 = no platform).
    camera_eye / camera_target: camera position and the point it looks at (base frame, m).
    width / height / fovy_deg: camera image size and vertical field of view.
    ee_xyz: initial tool centre point (tool pointing down).
    """

    blocks: dict[str, float] = field(default_factory=lambda: {"red": 0.02, "green": 0.025, "blue": 0.03})
    block_xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    platform_xy: tuple[float, float] = (0.6, 0.2)
    platform_half_m: float = 0.05
    platform_height_m: float = 0.06
    camera_eye: tuple[float, float, float] = (1.1, 0.0, 0.6)
    camera_target: tuple[float, float, float] = (0.5, 0.0, 0.05)
    width: int = 128
    height: int = 96
    fovy_deg: float = 50.0
    ee_xyz: tuple[float, float, float] = (0.45, 0.0, 0.25)

    def __post_init__(self):
        unknown = [c for c in self.blocks if c not in COLOURS]
        if unknown:
            raise ValueError(f"SceneSpec.blocks: unknown colours {unknown}; known: {list(COLOURS)}")

    def xy_of(self, colour: str) -> tuple[float, float]:
        if colour in self.block_xy:
            return tuple(self.block_xy[colour])
        i = list(self.blocks).index(colour)
        return 0.45 + 0.08 * i, -0.1 + 0.1 * i


def _rgba(colour: str) -> str:
    r, g, b = COLOURS[colour]
    return f"{r} {g} {b} 1"


def _finger(side: str, sign: int) -> str:
    # inner face at the joint position (distance from the centre), pad extending up from just below the TCP
    return (f'<body name="finger_{side}" gravcomp="1"><joint name="finger_joint_{side}" type="slide" axis="0 {sign} 0" '
            f'range="0 {FINGER_MAX_M}" damping="5" armature="0.01"/>'
            f'<geom name="finger_{side}" type="box" size="0.01 0.005 {FINGER_HALF_LEN_M}" '
            f'pos="0 {sign * 0.005} {-FINGER_HALF_LEN_M + 0.008}" rgba="0.25 0.25 0.28 1" friction="2 0.02 0.001" '
            f'condim="4" mass="0.02"/></body>')


def build_mjcf(spec: SceneSpec) -> str:
    from vla_ros.sim.camera import look_at

    blocks = "\n    ".join(
        f'<body name="block_{c}" pos="{spec.xy_of(c)[0]} {spec.xy_of(c)[1]} {h + 0.0005}">'
        f'<freejoint name="block_{c}_free"/><geom name="block_{c}" type="box" size="{h} {h} {h}" '
        f'rgba="{_rgba(c)}" mass="0.04" friction="1.5 0.02 0.001" condim="4"/></body>'
        for c, h in spec.blocks.items())
    platform = ""
    if spec.platform_height_m > 0:
        ph, (px, py), s = spec.platform_height_m / 2, spec.platform_xy, spec.platform_half_m
        platform = (f'<body name="platform" pos="{px} {py} 0"><geom name="platform" type="box" size="{s} {s} {ph}" '
                    f'pos="0 0 {ph}" rgba="0.55 0.5 0.45 1" friction="1.5 0.02 0.001"/></body>')
    w, x, y, z = look_at(np.asarray(spec.camera_eye, float), np.asarray(spec.camera_target, float))
    ex, ey, ez = spec.ee_xyz
    return f"""
<mujoco model="vla_ros_tabletop">
  <option timestep="0.002" gravity="0 0 -9.81" cone="elliptic" impratio="10"/>
  <visual><global offwidth="{max(640, spec.width)}" offheight="{max(480, spec.height)}"/>
    <quality shadowsize="512"/>  <!-- the default 4096 shadow map costs ~100 ms a frame in software GL -->
    <headlight ambient="0.35 0.35 0.35" diffuse="0.4 0.4 0.4"/></visual>
  <worldbody>
    <light pos="0.5 0.3 1.5" dir="0 -0.2 -1" diffuse="0.6 0.6 0.6"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" rgba="0.35 0.35 0.38 1"/>
    <geom name="table" type="box" pos="0.5 0 -0.02" size="0.5 0.6 0.02" rgba="0.78 0.72 0.6 1"/>
    {platform}
    <body name="ee_target" mocap="true" pos="{ex} {ey} {ez}" quat="{' '.join(map(str, TOOL_DOWN_WXYZ))}"/>
    <body name="ee" pos="{ex} {ey} {ez}" quat="{' '.join(map(str, TOOL_DOWN_WXYZ))}" gravcomp="1">
      <freejoint name="ee_free"/>
      <inertial pos="0 0 -0.06" mass="0.6" diaginertia="0.002 0.002 0.002"/>
      <geom name="palm" type="box" size="0.012 0.055 0.012" pos="0 0 {-2 * FINGER_HALF_LEN_M + 0.008 - 0.012}"
            rgba="0.2 0.2 0.22 1" contype="0" conaffinity="0" mass="0"/>
      <geom name="wrist" type="cylinder" size="0.02 0.03" pos="0 0 {-2 * FINGER_HALF_LEN_M - 0.04}"
            rgba="0.9 0.9 0.92 1" contype="0" conaffinity="0" mass="0"/>
      {_finger("left", 1)}
      {_finger("right", -1)}
    </body>
    {blocks}
    <camera name="{CAMERA}" pos="{' '.join(map(str, spec.camera_eye))}" quat="{w} {x} {y} {z}" fovy="{spec.fovy_deg}"/>
  </worldbody>
  <contact><exclude body1="finger_left" body2="finger_right"/></contact>
  <equality><weld name="ee_drive" body1="ee" body2="ee_target" solref="0.01 1"/></equality>
  <actuator>
    <position name="finger_left" joint="finger_joint_left" kp="400" ctrlrange="0 {FINGER_MAX_M}" forcerange="-15 15"/>
    <position name="finger_right" joint="finger_joint_right" kp="400" ctrlrange="0 {FINGER_MAX_M}"
              forcerange="-15 15"/>
  </actuator>
</mujoco>
"""
