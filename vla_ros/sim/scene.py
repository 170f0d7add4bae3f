"""A Franka-like tabletop in MuJoCo, built in code: a table whose surface is the base frame's z = 0 plane, a
floating end-effector with a parallel gripper driven through mocap, coloured blocks of several sizes, a
platform of adjustable height, and an RGB-D camera whose pose is set per episode.

Frames: the world frame is the robot base frame ("base"): x forward, z up, origin on the table surface.
"""
from __future__ import annotations

from dataclasses import dataclass, field

COLOURS = {"red": (0.85, 0.1, 0.1), "green": (0.1, 0.7, 0.2), "blue": (0.15, 0.3, 0.9), "yellow": (0.9, 0.8, 0.1)}


@dataclass
class SceneSpec:
    """Args: blocks (colour -> half size in m), camera image size, vertical field of view."""

    blocks: dict[str, float] = field(default_factory=lambda: {"red": 0.02, "green": 0.025, "blue": 0.03})
    width: int = 128
    height: int = 96
    fovy_deg: float = 50.0


def build_mjcf(spec: SceneSpec) -> str:
    blocks = "\n".join(
        f'<body name="block_{c}" pos="{0.45 + 0.08 * i} {-0.1 + 0.1 * i} {h + 0.001}">'
        f'<freejoint name="block_{c}_free"/><geom name="block_{c}" type="box" size="{h} {h} {h}" '
        f'rgba="{COLOURS[c][0]} {COLOURS[c][1]} {COLOURS[c][2]} 1" mass="0.05" friction="1.5 0.01 0.001"/></body>'
        for i, (c, h) in enumerate(spec.blocks.items()))
    return f"""
<mujoco model="vla_ros_tabletop">
  <option timestep="0.002" gravity="0 0 -9.81"/>
  <visual><global offwidth="{max(640, spec.width)}" offheight="{max(480, spec.height)}"/></visual>
  <worldbody>
    <light pos="0.5 0 1.5" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" rgba="0.4 0.4 0.4 1"/>
    <geom name="table" type="box" pos="0.5 0 -0.02" size="0.5 0.6 0.02" rgba="0.75 0.7 0.6 1"/>
    <body name="platform" pos="0.6 0.2 0.0">
      <geom name="platform" type="box" size="0.05 0.05 0.03" pos="0 0 0.03" rgba="0.5 0.5 0.55 1"/>
    </body>
    <body name="ee" mocap="true" pos="0.5 0 0.3" quat="0 1 0 0">
      <geom name="palm" type="box" size="0.02 0.05 0.01" rgba="0.2 0.2 0.2 1" contype="0" conaffinity="0"/>
      <body name="finger_left" pos="0 0.04 0.04">
        <joint name="finger_joint1" type="slide" axis="0 -1 0" range="0 0.04"/>
        <geom type="box" size="0.008 0.004 0.03" rgba="0.3 0.3 0.3 1" friction="2 0.01 0.001" mass="0.02"/>
      </body>
      <body name="finger_right" pos="0 -0.04 0.04">
        <joint name="finger_joint2" type="slide" axis="0 1 0" range="0 0.04"/>
        <geom type="box" size="0.008 0.004 0.03" rgba="0.3 0.3 0.3 1" friction="2 0.01 0.001" mass="0.02"/>
      </body>
    </body>
    {blocks}
    <camera name="front" pos="1.1 0 0.6" xyaxes="0 1 0 -0.5 0 0.866" fovy="{spec.fovy_deg}"/>
  </worldbody>
  <actuator>
    <position name="finger1" joint="finger_joint1" kp="200" ctrlrange="0 0.04"/>
    <position name="finger2" joint="finger_joint2" kp="200" ctrlrange="0 0.04"/>
  </actuator>
</mujoco>
"""
