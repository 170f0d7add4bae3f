"""A scripted expert that solves each task from ground-truth state, producing absolute end-effector targets
(position m, quaternion xyzw, gripper 1 open .. 0 closed) one control step at a time.

Plan: above the block -> down to its centre -> close -> lift -> (above the destination -> down to rest on it ->
open -> up). Targets move at most `speed_m_s` per second, slow enough for the runtime's safety limits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_ros.core.constants import TOOL_DOWN_QUAT_XYZW
from vla_ros.sim.env import SimEnv


@dataclass
class Target:
    position_m: np.ndarray
    quat_xyzw: np.ndarray
    gripper: float


@dataclass
class _Waypoint:
    position_m: np.ndarray
    gripper: float
    hold_steps: int = 0  # control steps to wait once reached (gripper motion)


class ScriptedExpert:
    """Args: env (reads its ground truth), speed_m_s (target speed), dt_s (control period), approach_m (height of
    the approach above grasp and place points), tol_m (how close the gripper must be before moving on)."""

    def __init__(self, env: SimEnv, speed_m_s: float = 0.15, dt_s: float | None = None, approach_m: float = 0.08,
                 tol_m: float = 0.006):
        self.env, self.speed_m_s, self.approach_m, self.tol_m = env, speed_m_s, approach_m, tol_m
        self.dt_s = dt_s or env.config.dt_s
        self.reset()

    def reset(self) -> None:
        self.target = self.env.ee_pose_split()[0].copy()
        self.gripper = 1.0
        self.plan: list[_Waypoint] = self._grasp_plan()
        self.held = 0
        self.done = False

    def _grasp_plan(self) -> list[_Waypoint]:
        ep, env = self.env.episode, self.env
        p = env.block_positions()[ep.target]
        above = np.r_[p[:2], p[2] + self.approach_m]
        lift_z = max(0.16, self._dest_top() + 2 * ep.scene.blocks[ep.target] + 0.06)
        return [_Waypoint(above, 1.0), _Waypoint(p.copy(), 1.0), _Waypoint(p.copy(), 0.0, hold_steps=5),
                _Waypoint(np.r_[p[:2], lift_z], 0.0)]

    def _dest_top(self) -> float:
        ep = self.env.episode
        if ep.destination == "platform":
            return ep.scene.platform_height_m
        if ep.destination:
            c = self.env.block_positions()[ep.destination]
            return float(c[2] + ep.scene.blocks[ep.destination])
        return 0.0

    def _place_plan(self) -> list[_Waypoint]:
        ep = self.env.episode
        if not ep.destination:
            return []
        xy = (np.asarray(ep.scene.platform_xy) if ep.destination == "platform"
              else self.env.block_positions()[ep.destination][:2])
        z = self._dest_top() + ep.scene.blocks[ep.target] + 0.004
        return [_Waypoint(np.r_[xy, self.target[2]], 0.0), _Waypoint(np.r_[xy, z], 0.0),
                _Waypoint(np.r_[xy, z], 1.0, hold_steps=5), _Waypoint(np.r_[xy, z + self.approach_m], 1.0)]

    def act(self) -> Target:
        """The next absolute target; the plan advances when the gripper has reached the current waypoint."""
        if self.plan:
            wp = self.plan[0]
            step = wp.position_m - self.target
            n = np.linalg.norm(step)
            max_step = self.speed_m_s * self.dt_s
            self.target = wp.position_m.copy() if n <= max_step else self.target + step * (max_step / n)
            self.gripper = wp.gripper
            reached = np.linalg.norm(self.env.ee_pose_split()[0] - wp.position_m) < self.tol_m
            if n <= max_step and reached:
                self.held += 1
                if self.held > wp.hold_steps:
                    self.plan.pop(0)
                    self.held = 0
                    if not self.plan and not self.done:
                        self.plan, self.done = self._place_plan(), True
        return Target(self.target.copy(), np.array(TOOL_DOWN_QUAT_XYZW), float(self.gripper))


@dataclass
class Perturbation:
    """Pushes applied to the commanded position while the expert's own (clean) targets are recorded, so the
    demonstrations show how to come back from off-path states (DART, Laskey et al. 2017). A push starts with
    probability `rate` per control step, lasts `steps` control steps and offsets the command by `offset_m` in a
    random horizontal direction (plus a smaller vertical part); none while the gripper closes or opens."""

    rate: float = 0.04
    steps: tuple[int, int] = (3, 8)
    offset_m: tuple[float, float] = (0.015, 0.05)

    def offsets(self, rng: np.random.Generator, expert: ScriptedExpert, state: dict) -> np.ndarray:
        """The offset (m) to add to this control step's command; `state` carries the push in progress."""
        holding = bool(expert.plan) and expert.plan[0].hold_steps > 0
        if holding or (expert.done and not expert.plan):
            state["left"] = 0
        elif state.get("left", 0) == 0 and rng.random() < self.rate:
            d = rng.normal(size=3) * [1.0, 1.0, 0.3]
            state["offset"] = d / np.linalg.norm(d) * rng.uniform(*self.offset_m)
            state["left"] = int(rng.integers(self.steps[0], self.steps[1] + 1))
        if state.get("left", 0) > 0:
            state["left"] -= 1
            return state["offset"]
        return np.zeros(3)


def rollout(env: SimEnv, seed: int, task: str | None = None, max_steps: int | None = None, record: bool = False,
            extra_steps: int = 3, perturb: Perturbation | None = None):
    """Runs the expert for one episode. Returns (success, frames) where frames is a list of (observation, target)
    pairs when `record` (the expert's target commanded right after that observation; with `perturb`, the
    commanded position is pushed off it now and then). Stops `extra_steps` after success."""
    obs = env.reset(seed, task)
    expert = ScriptedExpert(env)
    rng, push = np.random.default_rng([seed, 7]), {}
    frames, after = [], None
    for _ in range(max_steps or env.config.max_steps):
        tgt = expert.act()
        if record:
            frames.append((obs, tgt))
        offset = perturb.offsets(rng, expert, push) if perturb else 0.0
        obs = env.step(tgt.position_m + offset, tgt.quat_xyzw, tgt.gripper, render=record)
        if env.success() and after is None:
            after = 0
        if after is not None:
            after += 1
            if after > extra_steps:
                break
    return env.ever_succeeded, frames
