"""The MuJoCo tabletop as an environment: observation units and frames against the scene geometry, Franka
kinematics, task sampling and success checks, and the scripted expert solving every task."""
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from vla_ros.sim import franka  # noqa: E402
from vla_ros.sim.env import SimConfig, SimEnv  # noqa: E402
from vla_ros.sim.expert import Perturbation, rollout  # noqa: E402
from vla_ros.sim.tasks import SIZES_M, TASKS, sample_episode  # noqa: E402


@pytest.fixture(scope="module")
def env():
    try:
        e = SimEnv(SimConfig())
        e.reset(0, "stack_by_size")
    except Exception as exc:  # no EGL/OSMesa on this machine
        pytest.skip(f"MuJoCo cannot render headless here: {exc}")
    yield e
    e.close()


def test_franka_home_pose_is_the_published_one():
    T, _ = franka.forward(franka.Q_HOME)
    np.testing.assert_allclose(T[:3, 3], [0.3069, 0.0, 0.4869], atol=2e-4)  # flange 0.59 m up, TCP 0.1034 below
    np.testing.assert_allclose(T[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-6)  # tool pointing down
    q, err = franka.inverse(T, franka.Q_HOME + 0.05)
    assert err < 1e-4
    np.testing.assert_allclose(franka.forward(q)[0], T, atol=1e-4)


def test_observation_units_frames_and_a_known_depth(env):
    obs = env.reset(3, "place_on_platform")
    cam, scene = obs.cameras[0], env.episode.scene
    h, w = cam.rgb.shape[:2]
    assert (h, w) == (env.config.height, env.config.width) and cam.rgb.dtype == np.uint8
    assert cam.depth_m.dtype == np.float32 and cam.depth_m.shape == (h, w)
    np.testing.assert_array_equal(cam.depth_valid, cam.depth_m > 0)
    f = 0.5 * h / np.tan(np.radians(scene.fovy_deg) / 2)
    np.testing.assert_allclose(cam.K, [[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    T = cam.T_base_camera
    np.testing.assert_allclose(T[:3, 3], scene.camera_eye, atol=1e-9)
    look = np.asarray(scene.camera_target) - np.asarray(scene.camera_eye)
    np.testing.assert_allclose(T[:3, 2], look / np.linalg.norm(look), atol=1e-6)  # optical z forward
    assert T[2, 1] < 0  # optical y points down in the image, i.e. roughly -z in the world
    # the platform's top centre: known depth at its pixel, and back-projection lands on it
    top = np.r_[scene.platform_xy, scene.platform_height_m]
    p_cam = np.linalg.inv(T) @ np.r_[top, 1.0]
    u, v = (cam.K @ p_cam[:3])[:2] / p_cam[2]
    ui, vi = int(round(u)), int(round(v))
    assert 0 <= ui < w and 0 <= vi < h
    assert cam.depth_m[vi, ui] == pytest.approx(p_cam[2], abs=0.01)
    back = T @ np.r_[np.linalg.inv(cam.K) @ [ui, vi, 1.0] * cam.depth_m[vi, ui], 1.0]
    assert back[2] == pytest.approx(scene.platform_height_m, abs=3e-3)


def test_proprio_is_the_franka_joints_reaching_the_end_effector(env):
    obs = env.reset(1, "pick_by_distance")
    obs = env.step([0.55, 0.1, 0.15], [1.0, 0.0, 0.0, 0.0], 0.5, dt_s=1.0)
    assert obs.proprio.shape == (8,) and obs.ee_pose.shape == (1, 7)
    np.testing.assert_allclose(obs.ee_pose[0, :3], [0.55, 0.1, 0.15], atol=2e-3)  # reached its target
    T, _ = franka.forward(obs.proprio[:7].astype(float))
    np.testing.assert_allclose(T[:3, 3], obs.ee_pose[0, :3], atol=1e-3)
    assert env.gripper_width_m() == pytest.approx(0.04, abs=2e-3)  # half open
    q = obs.proprio[:7]
    assert np.all(q >= franka.Q_MIN - 1e-9) and np.all(q <= franka.Q_MAX + 1e-9)
    assert obs.proprio[7] == pytest.approx(0.02, abs=1e-3)  # one finger: half of the 4 cm opening


def test_episodes_are_seeded_and_instructions_come_from_templates():
    for task in TASKS:
        a, b = (sample_episode(np.random.default_rng(7), task) for _ in range(2))
        assert a.instruction == b.instruction and a.scene == b.scene
    texts = {sample_episode(np.random.default_rng(s), "stack_by_size").instruction for s in range(40)}
    assert any("smaller" in t for t in texts) and any(c in " ".join(texts) for c in ("red", "blue", "green"))
    heights = [sample_episode(np.random.default_rng(s), "place_on_platform").scene.platform_height_m
               for s in range(40)]
    assert min(heights) < 0.05 and max(heights) > 0.1  # platforms of random height
    with pytest.raises(ValueError, match="task"):
        sample_episode(np.random.default_rng(0), "juggle")


def test_pick_by_distance_targets_the_named_relation():
    for s in range(20):
        ep = sample_episode(np.random.default_rng(s), "pick_by_distance")
        eye = np.asarray(ep.scene.camera_eye)
        d = {c: np.linalg.norm(np.r_[ep.scene.block_xy[c], SIZES_M["medium"]] - eye) for c in ep.scene.blocks}
        other = next(c for c in d if c != ep.target)
        nearer = any(w in ep.instruction for w in ("nearer", "closer"))
        assert (d[ep.target] < d[other]) == nearer, ep.instruction


def test_doing_nothing_does_not_succeed_and_bad_targets_are_named(env):
    for task in TASKS:
        env.reset(5, task)
        for _ in range(5):
            env.step([0.45, 0.0, 0.25], None, 1.0, render=False)
        assert not env.success() and not env.ever_succeeded
    with pytest.raises(ValueError, match="position_m"):
        env.step([np.nan, 0.0, 0.2])
    with pytest.raises(ValueError, match="quat_xyzw"):
        env.step([0.5, 0.0, 0.2], [0.0, 0.0, 0.0, 2.0])


@pytest.mark.parametrize("task", TASKS)
def test_expert_solves_each_task_quick(env, task):
    assert all(rollout(env, seed, task)[0] for seed in range(3))


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_expert_solves_each_task_95_percent(env, task):
    ok = [rollout(env, 100 + seed, task)[0] for seed in range(20)]
    assert np.mean(ok) >= 0.95, f"{task}: {np.mean(ok):.2f}"


def test_perturbed_expert_records_its_own_corrections(env):
    """Pushed off its path, the expert still solves the task, and the recorded targets are its clean path: some
    frames then show the measured end-effector well off the commanded target (the corrections to learn)."""
    ok, frames = rollout(env, 5, "place_on_platform", record=True, perturb=Perturbation(rate=0.2))
    assert ok
    gaps = [np.linalg.norm(o.ee_pose[0, :3] - t.position_m) for o, t in frames]
    _, clean = rollout(env, 5, "place_on_platform", record=True)
    clean_gaps = [np.linalg.norm(o.ee_pose[0, :3] - t.position_m) for o, t in clean]
    assert max(gaps) > 0.03
    assert max(clean_gaps) < 0.02  # unpushed, the target leads the hand by one step (1.5 cm) at most
