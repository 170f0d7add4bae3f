"""Invariants of the safety layer and the executor, over random start poses, chunks and limits (hypothesis):
every command is inside the workspace box, finite, with unit quaternions, and within the step and speed limits
of the command before it, whatever the start state. Plus the time rules: future stamps are refused and a
chunk's timeout counts from its receipt as well as from its stamp."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ros_harness import arm_chunk

from vla_ros.core.chunking import Target
from vla_ros.core.executor import Executor, ExecutorConfig
from vla_ros.core.safety import SafetyConfig, clamp_target
from vla_ros.core.transforms import canonical_quat, quat_angle_rad

LO, HI = np.array([0.2, -0.5, 0.0]), np.array([0.75, 0.5, 0.7])
coord = st.floats(-1.5, 1.5, allow_nan=False)
point = st.tuples(coord, coord, coord).map(np.array)
quat = st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 4).filter(lambda q: np.linalg.norm(q) > 0.1).map(
    lambda q: canonical_quat(np.array(q)))
limits = st.fixed_dictionaries({"max_step_m": st.floats(0.001, 0.1), "max_step_rad": st.floats(0.01, 0.5),
                                "max_speed_m_s": st.floats(0.05, 2.0), "max_speed_rad_s": st.floats(0.1, 3.0),
                                "max_gripper_step": st.floats(0.0, 1.0)})
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def cfg_of(lim) -> SafetyConfig:
    return SafetyConfig(workspace_min_m=list(LO), workspace_max_m=list(HI), **lim)


def assert_command_ok(cmd: Target, prev: Target | None, cfg: SafetyConfig, period_s: float) -> None:
    p = cmd.position_m
    assert np.isfinite(p).all() and np.isfinite(cmd.quat_xyzw).all() and np.isfinite(cmd.gripper).all()
    assert (p >= LO - 1e-9).all() and (p <= HI + 1e-9).all(), f"{p} outside the box"
    np.testing.assert_allclose(np.linalg.norm(cmd.quat_xyzw, axis=-1), 1.0, atol=1e-6)
    if prev is not None:
        step = np.linalg.norm(p - prev.position_m, axis=-1)
        assert (step <= min(cfg.max_step_m, cfg.max_speed_m_s * period_s) + 1e-9).all()
        ang = quat_angle_rad(prev.quat_xyzw, cmd.quat_xyzw)
        assert (ang <= min(cfg.max_step_rad, cfg.max_speed_rad_s * period_s) + 1e-6).all()
        assert (np.abs(cmd.gripper - prev.gripper) <= cfg.max_gripper_step + 1e-9).all()


@SLOW
@given(prev_p=point, prev_q=quat, tgt_p=point, tgt_q=quat, grip=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       lim=limits, period=st.floats(0.002, 0.5))
def test_clamp_target_invariants(prev_p, prev_q, tgt_p, tgt_q, grip, lim, period):
    """From any previous pose; and with none (the first command before any pose is known)."""
    cfg = cfg_of(lim)
    prev = Target(prev_p[None], prev_q[None], np.array([grip[0]]))
    out = clamp_target(prev, Target(tgt_p[None], tgt_q[None], np.array([grip[1]])), period, cfg, Counter())
    dist_out = np.linalg.norm(prev_p - np.clip(prev_p, LO, HI))
    max_t = min(cfg.max_step_m, cfg.max_speed_m_s * period)
    if out is None:  # only allowed when the previous pose is more than a step outside the box
        assert dist_out > max_t - 1e-9
        return
    first = clamp_target(None, Target(tgt_p[None], tgt_q[None], np.array([grip[1]])), period, cfg, Counter())
    assert_command_ok(first, None, cfg, period)  # no previous command or pose: still inside the box
    assert_command_ok(out, prev, cfg, period)


def test_a_pose_just_outside_the_box_steps_in_when_the_stepped_target_would_clip_too_far():
    """Found by hypothesis: 1.25 cm below the box, a target across it; stepping toward the target and clipping
    would land 6.25+ cm away, yet a command inside the box within one step exists (so no hold)."""
    lim = {"max_step_m": 0.0625, "max_step_rad": 0.5, "max_speed_m_s": 1.0, "max_speed_rad_s": 1.0,
           "max_gripper_step": 1.0}
    cfg = cfg_of(lim)
    q = np.array([[0.0, 0.0, 0.0, 1.0]])
    prev = Target(np.array([[0.3, -0.5 - 0.0125, 0.3]]), q, np.array([0.5]))
    out = clamp_target(prev, Target(np.array([[0.3, 1.4, -0.4]]), q, np.array([0.5])), 0.5, cfg, Counter())
    assert out is not None
    assert_command_ok(out, prev, cfg, 0.5)
    assert out.position_m[0, 1] > -0.5 + 0.03  # and it made progress toward the target, not only into the box


def chunk_of(stamp, positions, quats, grips, dt=0.1):
    return arm_chunk(stamp, positions, quat_xyzw=quats, gripper=grips, dt_s=dt)


@SLOW
@given(start=point, start_q=quat, steps=st.lists(st.tuples(point, quat, st.floats(0, 1)), min_size=1, max_size=6),
       lim=limits, mode=st.sampled_from(["splice", "ensemble"]), rate=st.sampled_from([5.0, 20.0, 100.0]))
def test_executor_commands_hold_the_invariants_from_any_start(start, start_q, steps, lim, mode, rate):
    """Any start pose (inside or outside the box), any chunk the validator accepts: every published command
    keeps the invariants, and the first one is limited from the measured pose."""
    cfg = ExecutorConfig(rate_hz=rate, mode=mode, base_frame="base",
                         safety=SafetyConfig(workspace_min_m=list(LO), workspace_max_m=list(HI),
                                             max_chunk_jump_m=10.0, max_chunk_jump_rad=10.0, **lim))
    ex = Executor(cfg)
    measured = Target(start[None], start_q[None], np.ones(1))
    ps, qs, gs = zip(*steps)
    ex.on_chunk(chunk_of(10.0, ps, qs, gs), 10.0, measured)
    prev, period = measured, 1.0 / rate
    for k in range(int(rate * 0.8)):
        cmd = ex.tick(10.0 + (k + 1) * period, measured)
        if cmd.kind == "move":
            assert_command_ok(cmd.target, prev, cfg.safety, period)
            prev = cmd.target
        else:
            assert cmd.kind == "hold"


def test_a_target_a_hair_outside_the_box_is_clipped():
    cfg = SafetyConfig(workspace_min_m=list(LO), workspace_max_m=list(HI))
    out = clamp_target(None, Target(np.array([[HI[0] + 7e-6, 0.0, 0.3]]), np.array([[0, 0, 0, 1.0]]), np.ones(1)),
                       0.05, cfg, Counter())
    assert out.position_m[0, 0] == HI[0]


def test_arm_starting_outside_the_box_never_gets_a_command_outside_it():
    """Finding 3: measured pose 5 cm beyond x max (0.75); the reference chunk asks for 0.80 -> 0.77. Before the
    fix the commands were 0.7875, 0.775, 0.7625. Now: a hold that names the distance, and no command."""
    cfg = ExecutorConfig(rate_hz=20.0, base_frame="base",
                         safety=SafetyConfig(workspace_min_m=[0.2, -0.5, 0.0], workspace_max_m=[0.75, 0.5, 0.7],
                                             max_step_m=0.0125, max_speed_m_s=1.0))
    ex = Executor(cfg)
    down = np.array([[1.0, 0, 0, 0]])
    measured = Target(np.array([[0.80, 0.0, 0.3]]), down, np.ones(1))
    ex.reset(9.0)
    assert ex.on_chunk(chunk_of(10.0, [[0.79, 0, 0.3], [0.78, 0, 0.3], [0.77, 0, 0.3]], [down] * 3, [1] * 3),
                       10.0, measured) == []
    cmds = [ex.tick(10.0 + 0.05 * k, measured) for k in range(1, 6)]
    assert all(c.kind == "hold" and "0.050 m outside the workspace" in c.reason for c in cmds)
    assert ex.counters["hold_outside_workspace"] == 5
    # Within one step of the box: commands resume, inside the box, from the measured pose.
    near = Target(np.array([[0.755, 0.0, 0.3]]), down, np.ones(1))
    cmd = ex.tick(10.3, near)
    assert cmd.kind == "move" and cmd.target.position_m[0, 0] <= 0.75


def test_future_stamped_chunk_is_refused_and_does_not_lock_out_the_policy():
    """Finding 2: a chunk stamped 10 s ahead was accepted, kept commands flowing 9-10 s after it arrived and made
    fresh chunks 'not after the newest' for ~10 s."""
    ex = Executor(ExecutorConfig(rate_hz=20.0, base_frame="base"))
    down = np.array([[1.0, 0, 0, 0]])
    future = chunk_of(110.0, [[0.5, 0, 0.3]] * 4, [down] * 4, [1] * 4)
    reasons = ex.on_chunk(future, 100.0)
    assert reasons and "in the future" in reasons[0]
    assert ex.counters["refused_chunk: chunk stamped N s in the future > max N s"] == 1
    assert ex.on_chunk(chunk_of(100.05, [[0.5, 0, 0.3]] * 4, [down] * 4, [1] * 4), 100.1) == []
    assert ex.tick(100.15).kind == "move"


@pytest.mark.parametrize("skew_s", [0.0, 0.09])
def test_timeout_counts_from_receipt_as_well_as_stamp(skew_s):
    """A chunk stamped slightly ahead (within tolerance) or on time stops driving `chunk_timeout_s` after it was
    received, whichever of stamp and receipt expires first."""
    ex = Executor(ExecutorConfig(rate_hz=20.0, base_frame="base", safety=SafetyConfig(chunk_timeout_s=0.5)))
    down = np.array([[1.0, 0, 0, 0]])
    long = chunk_of(100.0 + skew_s, [[0.5, 0, 0.3]] * 40, [down] * 40, [1] * 40)
    assert ex.on_chunk(long, 100.0) == []
    assert ex.tick(100.45).kind == "move"
    cmd = ex.tick(100.55)
    assert cmd.kind == "hold" and ("arrived" in cmd.reason or "old" in cmd.reason)
