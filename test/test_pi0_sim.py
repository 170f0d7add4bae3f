"""The tiny π0 and π0 + Spatial Forcing rows of the simulation ablation (config/train/sim_pi0*.yaml): the other sim
rows' recipe, the two files differing by the Spatial Forcing flag alone; the teacher is the bundled sim ESM, frozen,
fed RGB only, never saved nor run at inference (inference costs what plain π0's does); a dataset in the
simulator's format (Franka joints, delta_measured actions) trains π0, and its checkpoint drives the closed loop."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch.utils.flop_counter import FlopCounterMode

from vla_ros.core.config import from_dict, load_yaml, to_dict
from vla_ros.core.normalize import action_proprio_stats
from vla_ros.policies.checkpoint_io import load_policy, save_checkpoint
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import make_policy
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats
from vla_ros.training.trainer import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "config" / "train"
SIM_ESM = REPO / "vla_ros" / "checkpoints" / "sim_esm"
FRANKA_JOINTS = [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1"]


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def sim_config(name: str) -> dict:
    return to_dict(load_yaml(TrainConfig, TRAIN / f"{name}.yaml"))  # what `vla-ros train --config` reads


def sim_policy(name: str, seed: int = 0):
    torch.manual_seed(seed)
    pcfg = from_dict(PolicyConfig, sim_config(name)["policy"], "policy")
    return make_policy(pcfg, synthetic_norm_stats(pcfg))


def test_sim_pi0_configs_differ_only_by_the_spatial_forcing_flag_and_follow_the_sim_recipe():
    plain, sf = flat(sim_config("sim_pi0")), flat(sim_config("sim_pi0_sf"))
    differ = sorted(k for k in set(plain) | set(sf) if plain.get(k) != sf.get(k))
    assert differ == ["out", "policy.method_args.spatial_forcing.enabled", "policy.name"], differ
    assert plain["policy.method_args.spatial_forcing.enabled"] is False
    assert sf["policy.method_args.spatial_forcing.enabled"] is True
    base = flat(sim_config("sim_baseline"))  # the recipe of the other rows: data, inputs, schedule
    for key in ("dataset", "steps", "batch_size", "lr", "seed", "augment_shift_px", "eval_every", "val_batches",
                "policy.camera_names", "policy.image_size", "policy.proprio_dim", "policy.proprio_names",
                "policy.horizon", "policy.dt_s", "policy.action_reference", "policy.rotation_ref_quat_xyzw",
                "policy.modalities"):
        assert plain[key] == base[key], key
    assert plain["policy.method"] == "pi0" and plain["policy.method_args.action_dim"] == 32  # openpi's padding


def test_sim_pi0_sf_aligns_to_the_bundled_sim_esm_rgb_only_at_two_thirds_depth(monkeypatch):
    policy = sim_policy("sim_pi0_sf")
    sf, depth = policy.args.spatial_forcing, policy.args.paligemma.depth
    assert sf.align_layer == round(depth * 12 / 18) and 0 < sf.align_layer < depth  # openpi-SF: 12 of 18
    esm = yaml.safe_load((SIM_ESM / "config.yaml").read_text())["esm"]
    for k in ("embed_dim", "heads", "depth", "patch_size", "img_size", "dino_depth", "num_register_tokens"):
        assert getattr(sf.teacher, k) == esm[k], k
    assert not sf.teacher.depth_input and not sf.teacher.pose_input  # the teacher sees images only, as VGGT
    assert sf.teacher_checkpoint == "vla_ros/checkpoints/sim_esm"  # relative to the repository, where training runs
    monkeypatch.chdir(REPO)
    _, metrics = policy.compute_loss(synthetic_batch(policy.config, 2, seed=0))
    assert np.isfinite(metrics["align_loss"]) and 0.0 < metrics["align_loss"] < 2.0
    teacher = policy._teacher[0]
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    stored = load_file(str(SIM_ESM / "model.safetensors"))
    own = teacher.state_dict()
    assert all(torch.equal(own[k], stored[k]) for k in own), "the teacher is the bundled sim ESM, every weight"
    assert not any(k.startswith(("aggregator.depth", "aggregator.pose", "aggregator.camera_placeholder"))
                   for k in own)  # no depth or pose input path


def inference_flops(policy, batch) -> int:
    policy.eval()
    with FlopCounterMode(display=False) as counter:
        torch.manual_seed(0)
        policy.predict_actions(batch, ("rgb",))
    return counter.get_total_flops()


def test_sim_pi0_sf_checkpoint_holds_no_teacher_and_infers_at_plain_pi0_cost(tmp_path, monkeypatch):
    sf = sim_policy("sim_pi0_sf")
    batch = synthetic_batch(sf.config, 2, seed=1)
    monkeypatch.chdir(REPO)
    sf.compute_loss(batch)  # builds the teacher
    assert sf._teacher
    save_checkpoint(sf, tmp_path / "sf")
    keys = set(load_file(str(tmp_path / "sf" / "model.safetensors")))
    assert not any("aggregator" in k or "teacher" in k for k in keys)
    loaded = load_policy(tmp_path / "sf")
    plain = sim_policy("sim_pi0")
    infer_keys = {k for k in keys if not k.startswith("align_projector.")}
    assert infer_keys == set(plain.state_dict())  # the projector is the only extra, and training-only
    assert inference_flops(loaded, batch) == inference_flops(plain, batch) > 0
    assert not loaded._teacher  # inference built no teacher


def write_franka_dataset(root: Path, episodes: int = 3, n: int = 12, seed: int = 0) -> Path:
    """Episodes in the simulator's format: one 96x128 front camera, the Franka's 7 joints + finger, the measured
    end-effector pose (delta_measured targets) and gripper commands."""
    from vla_ros.data.dataset import DatasetWriter

    rng = np.random.default_rng(seed)
    w = DatasetWriter(root, ["front"], ["arm"], FRANKA_JOINTS, 0.1, (96, 128))
    tool_down = np.array([1.0, 0.0, 0.0, 0.0])
    for _ in range(episodes):
        ee = np.array([0.45, 0.0, 0.3]) + np.cumsum(rng.normal(0, 0.01, (n, 3)), 0)
        grip = (np.arange(n) < n // 2).astype(float)
        rgb = rng.integers(0, 255, (n, 96, 128, 3), dtype=np.uint8)
        K = np.tile([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]], (n, 1, 1))
        w.add_episode({"stamp_s": np.arange(n) * 0.1, "proprio": np.c_[rng.normal(0, 0.3, (n, 7)), 0.04 * grip],
                       "rgb__front": rgb, "K__front": K, "T_base_camera__front": np.tile(np.eye(4), (n, 1, 1)),
                       "ee_pose": np.c_[ee, np.tile(tool_down, (n, 1))][:, None],
                       "action_position_m": np.roll(ee, -1, 0)[:, None],
                       "action_quat_xyzw": np.tile(tool_down, (n, 1, 1)), "action_gripper": grip[:, None]},
                      "put the red block on the platform", "place_on_platform")
    return w.close()


def test_sim_pi0_trains_on_a_sim_format_dataset_and_its_checkpoint_runs_the_closed_loop(tmp_path):
    data = write_franka_dataset(tmp_path / "ds")
    cfg = sim_config("sim_pi0")
    cfg.update(dataset=[str(data)], out=str(tmp_path / "run"), steps=2, batch_size=4, eval_every=2, ckpt_every=2,
               val_batches=1)
    last = train(from_dict(TrainConfig, cfg), progress=False)
    assert last["step"] == 2 and np.isfinite(last["val_loss"])
    policy = load_policy(tmp_path / "run" / "checkpoint")
    from vla_ros.data.torch_dataset import EpisodeDataset

    ds = EpisodeDataset(str(data), 8, 64, "train", 0.1, 0, ["front"], [0, 0, 0, 1], "delta_measured",
                        ["fr3_finger_joint1"], 4)
    for key in ("action", "proprio"):  # the stats the actions were normalised with travel with the checkpoint
        np.testing.assert_allclose(policy.norm_stats.stats[key].mean, ds.norm_stats.stats[key].mean, rtol=1e-6)
        np.testing.assert_allclose(policy.norm_stats.stats[key].std, ds.norm_stats.stats[key].std, rtol=1e-6)
    pytest.importorskip("mujoco")
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vla_ros.runtime_config import load_runtime_config
    from vla_ros.sim.closed_loop import run_episode
    from vla_ros.sim.env import SimConfig, SimEnv

    try:
        env = SimEnv(SimConfig())
    except Exception as exc:
        pytest.skip(f"MuJoCo cannot render headless here: {exc}")
    try:
        r = run_episode(env, policy, load_runtime_config("sim_franka"), 100_000, "place_on_platform", "rgb",
                        max_time_s=1.0)
    finally:
        env.close()
    assert len(r.inference_ms) >= 2 and set(r.modalities) == {"rgb"}


def test_a_seeded_closed_loop_episode_of_stochastic_pi0_repeats_whatever_ran_before(tmp_path):
    """π0 samples its flow-matching noise at every inference: the episode seed fixes it, so an ablation row's
    episodes do not depend on the rows (or the random draws) before them."""
    pytest.importorskip("mujoco")
    os.environ.setdefault("MUJOCO_GL", "egl")
    from vla_ros.runtime_config import load_runtime_config
    from vla_ros.sim.closed_loop import run_episode
    from vla_ros.sim.env import SimConfig, SimEnv

    rng = np.random.default_rng(0)  # steps of a few cm, as the sim's: the noise moves the arm within a second
    stats = action_proprio_stats(np.c_[rng.normal(0, 0.02, (100, 6)), rng.integers(0, 2, (100, 1))],
                                 rng.uniform(0, 0.04, (100, 1)))
    torch.manual_seed(0)
    policy = make_policy(from_dict(PolicyConfig, sim_config("sim_pi0")["policy"], "policy"), stats)
    try:
        env = SimEnv(SimConfig())
    except Exception as exc:
        pytest.skip(f"MuJoCo cannot render headless here: {exc}")
    cfg = load_runtime_config("sim_franka")
    try:
        runs = []
        for draws in (0, 7):
            torch.randn(draws)  # whatever happened before this episode
            runs.append(run_episode(env, policy, cfg, 100_001, "place_on_platform", "rgb", max_time_s=1.0,
                                    record=True))
    finally:
        env.close()
    a, b = runs
    assert len(a.frames) == len(b.frames) >= 2
    assert not np.array_equal(a.frames[0], a.frames[-1])  # the arm moved
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
