"""Chunk playback and safety without ROS: interpolation, ensembling, splicing, deltas, clamps, refusals, holds."""
from collections import Counter

import numpy as np
import pytest
from ros_harness import DOWN_XYZW as DOWN
from ros_harness import arm_chunk

from vla_ros.core.chunking import Target, resolve_reference, sample
from vla_ros.core.config import from_dict
from vla_ros.core.executor import Executor, ExecutorConfig
from vla_ros.core.safety import SafetyConfig, clamp_target
from vla_ros.core.transforms import quat_angle_rad, rotvec_to_quat


def chunk(stamp, xs, dt=0.1, grip=1.0, ref="absolute", quat=DOWN, seq=0):
    return arm_chunk(stamp, [[x, 0.0, 0.3] for x in xs], quat_xyzw=quat, gripper=grip, dt_s=dt, reference=ref, seq=seq)


def test_interpolation_between_steps_with_slerp():
    c = chunk(10.0, [0.4, 0.5])
    q90 = rotvec_to_quat(np.array([0, 0, np.pi / 2]))
    c.quat_xyzw[1, 0] = q90
    mid = sample(c, 10.15)  # halfway between step 0 (10.1) and step 1 (10.2)
    np.testing.assert_allclose(mid.position_m[0], [0.45, 0, 0.3])
    assert quat_angle_rad(mid.quat_xyzw[0], DOWN) == pytest.approx(quat_angle_rad(q90, DOWN) / 2, abs=1e-6)


def test_delta_target_accumulates_on_commanded_target_not_measured():
    last = Target(np.array([[0.5, 0.0, 0.3]]), DOWN[None].copy(), np.ones(1))
    measured = Target(np.array([[0.45, 0.0, 0.3]]), DOWN[None].copy(), np.ones(1))
    d = chunk(1.0, [0.01, 0.01], ref="delta_target", quat=np.array([0, 0, 0, 1.0]))
    d.position_m[:, :, 2] = 0.0
    out = resolve_reference(d, last, measured)
    np.testing.assert_allclose(out.position_m[:, 0, 0], [0.51, 0.52])
    m = chunk(1.0, [0.01, 0.02], ref="delta_measured", quat=np.array([0, 0, 0, 1.0]))
    m.position_m[:, :, 2] = 0.0
    np.testing.assert_allclose(resolve_reference(m, last, measured).position_m[:, 0, 0], [0.46, 0.47])


def test_workspace_and_step_clamps_are_counted():
    cfg = SafetyConfig(max_step_m=0.01, max_speed_m_s=1.0)
    n = Counter()
    prev = Target(np.array([[0.5, 0.0, 0.3]]), DOWN[None].copy(), np.ones(1))
    out = clamp_target(prev, Target(np.array([[0.5, 0.0, -0.2]]), DOWN[None].copy(), np.ones(1)), 0.05, cfg, n)
    assert n["clamp_workspace"] == 1 and n["clamp_translation_step"] == 1
    np.testing.assert_allclose(out.position_m[0], [0.5, 0.0, 0.29])


def make_executor(**kw):
    return Executor(from_dict(ExecutorConfig, {"rate_hz": 20.0, "base_frame": "base", **kw}))


def test_nan_chunk_refused_and_timeout_holds():
    ex = make_executor()
    bad = chunk(10.0, [0.5, np.nan])
    assert any("non-finite" in r for r in ex.on_chunk(bad, 10.05))
    assert ex.tick(10.1).kind == "hold"
    assert ex.on_chunk(chunk(10.0, [0.5, 0.51]), 10.05) == []
    assert ex.tick(10.1).kind == "move"
    cmd = ex.tick(11.5)
    assert cmd.kind == "hold" and "timeout" in cmd.reason


def test_estop_and_pause():
    ex = make_executor()
    ex.on_chunk(chunk(10.0, [0.5, 0.51]), 10.0)
    ex.paused = True
    assert ex.tick(10.1).kind == "paused"
    ex.paused = False
    ex.estop()
    assert ex.tick(10.1).kind == "estop"


def test_splicing_skips_elapsed_steps_and_blends_the_seam():
    ex = make_executor(mode="splice", blend_steps=2, safety={"max_step_m": 0.5, "max_speed_m_s": 10.0})
    ex.on_chunk(chunk(10.0, [0.40, 0.41, 0.42, 0.43]), 10.0)
    for t in np.arange(10.05, 10.30, 0.05):
        ex.tick(t)
    before = ex.last_command.position_m[0, 0]
    # next chunk computed from an observation at 10.1 arrives at 10.3: two steps are already late
    assert ex.on_chunk(chunk(10.1, [0.45, 0.46, 0.47, 0.48], seq=1), 10.3) == []
    assert ex.splicer.skipped_steps == 2
    first = ex.tick(10.35).target.position_m[0, 0]
    assert abs(first - before) < abs(0.47 - before)  # blended, no jump to the new chunk


def test_splicing_finishes_the_blend_before_the_next_chunk_is_due():
    """Chunks every 0.2 s, a 3-step (0.3 s) blend: each seam is blended over the 0.2 s between arrivals, so the
    command reaches the newest chunk by the time the next one comes (a 0.3 s blend would restart at 2/3)."""
    ex = make_executor(mode="splice", blend_steps=3, safety={"max_step_m": 0.5, "max_speed_m_s": 10.0})
    ex.on_chunk(chunk(10.0, [0.40] * 4), 10.0)
    np.testing.assert_allclose(ex.tick(10.1).target.position_m[0, 0], 0.40)
    ex.on_chunk(chunk(10.2, [0.50] * 4, seq=1), 10.2)  # 0.2 s after the first: the blend takes 0.2 s
    np.testing.assert_allclose(ex.tick(10.3).target.position_m[0, 0], 0.45)
    np.testing.assert_allclose(ex.tick(10.4).target.position_m[0, 0], 0.50)  # reached as the next one is due
    ex.on_chunk(chunk(10.4, [0.60] * 4, seq=2), 10.4)
    np.testing.assert_allclose(ex.tick(10.5).target.position_m[0, 0], 0.55)
    np.testing.assert_allclose(ex.tick(10.6).target.position_m[0, 0], 0.60)
    one = make_executor(mode="splice", blend_steps=3, safety={"max_step_m": 0.5, "max_speed_m_s": 10.0})
    one.on_chunk(chunk(10.0, [0.40] * 8), 10.0)
    one.tick(10.4)
    assert one.on_chunk(chunk(10.5, [0.46] * 4, seq=1), 10.5) == []  # 0.5 s apart: the full 0.3 s blend
    np.testing.assert_allclose(one.tick(10.6).target.position_m[0, 0], 0.40 + 0.1 / 0.3 * 0.06)


def test_ensembling_averages_overlapping_chunks():
    ex = make_executor(mode="ensemble", ensemble_decay=0.0, safety={"max_step_m": 0.5, "max_speed_m_s": 10.0})
    ex.on_chunk(chunk(10.0, [0.40, 0.40, 0.40, 0.40]), 10.0)
    ex.on_chunk(chunk(10.1, [0.50, 0.50, 0.50, 0.50], seq=1), 10.1)
    cmd = ex.tick(10.25)
    np.testing.assert_allclose(cmd.target.position_m[0, 0], 0.45)


def test_chunk_jump_is_refused():
    ex = make_executor()
    assert ex.on_chunk(chunk(10.0, [0.4, 0.41]), 10.0) == []
    ex.tick(10.1)
    reasons = ex.on_chunk(chunk(10.1, [0.75, 0.76], seq=1), 10.15)
    assert any("position jump" in r for r in reasons)
    assert ex.counters["refused_chunk: position jump N m > max N m"] == 1  # counted by kind, not by value
    assert sum(v for k, v in ex.counters.items() if k.startswith("refused_chunk")) == 1


def test_first_command_is_limited_from_the_measured_pose():
    ex = make_executor(safety={"max_step_m": 0.01, "max_speed_m_s": 1.0, "max_chunk_jump_m": 0.5})
    measured = Target(np.array([[0.40, 0.0, 0.3]]), DOWN[None].copy(), np.ones(1))
    assert ex.on_chunk(chunk(10.0, [0.6, 0.6]), 10.0, measured) == []
    cmd = ex.tick(10.05, measured)
    np.testing.assert_allclose(cmd.target.position_m[0], [0.41, 0.0, 0.3])  # one step from the robot, not 0.6
    far = make_executor()
    reasons = far.on_chunk(chunk(10.0, [0.75, 0.75]), 10.0, Target(np.array([[0.3, 0.0, 0.3]]), DOWN[None].copy(),
                                                                    np.ones(1)))
    assert any("position jump" in r for r in reasons)  # first step 0.45 m from the measured pose: refused


def test_pose_history_gives_the_pose_at_the_observation_stamp():
    from vla_ros.core.pose_history import PoseHistory

    h = PoseHistory(horizon_s=1.0)
    assert h.at(5.0) == (None, "empty")
    q90 = rotvec_to_quat(np.array([0, 0, np.pi / 2]))
    h.add(10.0, np.r_[0.4, 0.0, 0.3, DOWN])
    h.add(10.2, np.r_[0.5, 0.1, 0.3, q90])
    mid, how = h.at(10.05)  # a quarter of the way
    assert how == "interpolated"
    np.testing.assert_allclose(mid.position_m[0], [0.425, 0.025, 0.3])
    assert quat_angle_rad(mid.quat_xyzw[0], DOWN) == pytest.approx(quat_angle_rad(q90, DOWN) / 4, abs=1e-6)
    assert h.at(11.0)[1] == "newest" and h.at(9.0)[1] == "oldest"
    h.add(11.5, np.r_[0.6, 0.0, 0.3, DOWN])  # older than horizon_s is forgotten
    np.testing.assert_allclose(h.at(10.1)[0].position_m[0], [0.6, 0.0, 0.3])
    h.add(3.0, np.r_[0.1, 0.0, 0.3, DOWN])  # the clock went back (restart): start over
    assert h.at(3.0)[0].position_m[0, 0] == pytest.approx(0.1)


def test_reset_drops_chunks_and_the_last_command_and_ignores_older_observations():
    ex = Executor(ExecutorConfig(rate_hz=20.0, mode="splice"))
    ex.on_chunk(chunk(10.0, [0.40, 0.41, 0.42]), 10.0)
    assert ex.tick(10.1).kind == "move" and ex.last_command is not None
    ex.reset(10.2)
    assert ex.last_command is None and ex.tick(10.2).kind == "hold"
    assert ex.on_chunk(chunk(10.15, [0.5, 0.5]), 10.25) == ["observed before the last reset"]
    assert ex.counters["dropped_from_before_reset"] == 1
    assert ex.on_chunk(chunk(10.3, [0.6, 0.6]), 10.3) == []  # far from the old command: accepted after the reset
    np.testing.assert_allclose(ex.tick(10.4).target.position_m[0, 0], 0.6)


def test_splicing_passes_a_gripper_change_on_at_once_even_when_chunks_come_faster_than_the_blend():
    ex = make_executor(mode="splice", blend_steps=3, safety={"max_step_m": 0.5, "max_speed_m_s": 10.0})
    ex.on_chunk(chunk(10.0, [0.40] * 4, grip=1.0), 10.0)
    ex.tick(10.05)
    for k in range(1, 6):  # a closing chunk every 0.2 s, shorter than the 0.3 s blend window
        t = 10.0 + 0.2 * k
        assert ex.on_chunk(chunk(t, [0.40] * 4, grip=0.0, seq=k), t) == []
        assert ex.tick(t + 0.05).target.gripper[0] == 0.0


def test_tick_timing_known_answers():
    """Achieved rate over the ticks' span and per-gap jitter |gap - period|, as /diagnostics and the bench give."""
    from vla_ros.core.executor import tick_timing

    achieved, jitter = tick_timing([0.0, 0.005, 0.010, 0.017, 0.020], 200.0)
    assert achieved == pytest.approx(4 / 0.020)
    np.testing.assert_allclose(jitter, [0.0, 0.0, 0.002, 0.002], atol=1e-12)
    achieved, jitter = tick_timing([1.0], 200.0)
    assert achieved == 0.0 and jitter.size == 0
