"""The in-process closed loop (executor, Franka gripper mapping and simulator on simulated time): a policy that
is right solves every task through it, a policy that is wrong does not, and the statistics are exact."""
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from ros_harness import held_chunk  # noqa: E402

from vla_ros.runtime_config import load_runtime_config  # noqa: E402
from vla_ros.sim.closed_loop import run_episode, wilson_interval  # noqa: E402
from vla_ros.sim.env import SimConfig, SimEnv  # noqa: E402
from vla_ros.sim.expert import ScriptedExpert  # noqa: E402
from vla_ros.sim.tasks import TASKS  # noqa: E402


class ExpertAsPolicy:
    """The scripted expert behind the policy interface: absolute chunks of its next target."""

    def __init__(self, env, horizon=4, frozen=False):
        self.env, self.horizon, self.frozen, self.expert = env, horizon, frozen, None

    def reset(self):
        self.expert = None

    def infer(self, obs, modalities=None):
        if self.expert is None:
            self.expert = ScriptedExpert(self.env, dt_s=0.2)  # called at the policy rate (5 Hz)
        t = self.expert.act() if not self.frozen else self.expert.act().__class__(
            np.array([0.45, 0.0, 0.25]), np.array([1.0, 0, 0, 0]), 1.0)
        return held_chunk(obs.stamp_s, t.position_m, self.horizon, quat_xyzw=t.quat_xyzw, gripper=t.gripper,
                          frame_id="", modalities=("rgb",))


@pytest.fixture(scope="module")
def env():
    try:
        e = SimEnv(SimConfig())
        e.reset(0, TASKS[0])
    except Exception as exc:
        pytest.skip(f"MuJoCo cannot render headless here: {exc}")
    yield e
    e.close()


@pytest.mark.parametrize("task", TASKS)
def test_a_right_policy_solves_each_task_through_the_executor(env, task):
    cfg = load_runtime_config("sim_franka")
    results = [run_episode(env, ExpertAsPolicy(env), cfg, 100_000 + s, task) for s in range(2)]
    assert all(r.success for r in results), [r.summary() for r in results]
    assert all(r.time_s < 15.0 and len(r.inference_ms) > 5 for r in results)


def test_a_policy_that_holds_still_fails_and_records_frames(env):
    cfg = load_runtime_config("sim_franka")
    r = run_episode(env, ExpertAsPolicy(env, frozen=True), cfg, 100_000, TASKS[0], max_time_s=2.0, record=True)
    assert not r.success and r.time_s == 2.0
    assert len(r.frames) == len(r.inference_ms) == 10 and r.frames[0].shape == (96, 128, 3)
    np.testing.assert_allclose(env.ee_pose()[:3], [0.45, 0.0, 0.25], atol=2e-3)


def test_wilson_interval_known_values():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson_interval(10, 10)[1] == 1.0
