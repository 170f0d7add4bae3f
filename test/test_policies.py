"""The four methods behind one interface: registry, overfitting a fixed batch, inference, checkpoints."""
import numpy as np
import pytest
import torch

from vla_ros.core.config import ConfigError
from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.checkpoint_io import CheckpointError, load_policy, save_checkpoint
from vla_ros.policies.factory import available_methods, make_policy, policy_class, register_policy, tiny_config
from vla_ros.training.synthetic import fit_batch, synthetic_batch, synthetic_norm_stats

METHODS = ["baseline", "falcon", "spatial_forcing", "spatialvla_legacy"]  # the trainable tiny look-alikes
# + the reference SpatialVLA (test_spatialvla_reference.py) and pi0 (stochastic flow matching: test_pi0.py)
ALL_METHODS = sorted([*METHODS, "spatialvla", "pi0"])


def build(method, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = tiny_config(method, **kw)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def observation(depth=True, pose=True, seed=0, stamp_s=12.5):
    rng = np.random.default_rng(seed)
    cam = CameraObservation(name="front", rgb=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                            K=np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]), stamp_s=stamp_s,
                            depth_m=np.full((48, 64), 0.8, np.float32) if depth else None,
                            depth_valid=np.ones((48, 64), bool) if depth else None,
                            T_base_camera=np.eye(4) if pose else None)
    return Observation(stamp_s=stamp_s, cameras=[cam], proprio=np.zeros(8, np.float32), instruction="reach the block")


def test_methods_are_found_by_name_and_a_new_one_registers_without_touching_the_factory():
    assert available_methods() == ALL_METHODS
    base = policy_class("baseline")

    @register_policy
    class Echo(base):
        method = "echo_test"

    assert policy_class("echo_test") is Echo and "echo_test" in available_methods()
    with pytest.raises(ConfigError, match="unknown 'nope'"):
        policy_class("nope")


@pytest.mark.parametrize("method", METHODS)
def test_tiny_configs_are_a_few_million_parameters(method):
    n = sum(p.numel() for p in build(method).parameters())
    assert 0.2e6 < n < 5e6, n


@pytest.mark.parametrize("method", METHODS)
def test_tiny_config_overfits_a_fixed_batch(method):
    policy = build(method)
    batch = synthetic_batch(policy.config, 8, seed=1)
    history = fit_batch(policy, batch, 60, lr=1e-3)
    first, metrics = history[0]["loss"], history[-1]
    assert metrics["loss"] <= first / 10, (method, first, metrics)


@pytest.mark.parametrize("method", METHODS)
def test_save_load_infer_identical(method, tmp_path):
    policy = build(method)
    save_checkpoint(policy, tmp_path / method)
    loaded = load_policy(tmp_path / method)
    obs = observation()
    a, b = policy.infer(obs), loaded.infer(obs)
    np.testing.assert_array_equal(a.position_m, b.position_m)
    np.testing.assert_array_equal(a.quat_xyzw, b.quat_xyzw)
    np.testing.assert_array_equal(a.gripper, b.gripper)
    assert a.position_m.shape == (4, 1, 3) and ((a.gripper >= 0) & (a.gripper <= 1)).all()
    np.testing.assert_allclose(np.linalg.norm(a.quat_xyzw, axis=-1), 1.0)
    assert a.stamp_s == 12.5 and a.method == method and a.dt_s == policy.config.dt_s
    assert (tmp_path / method / "tokenizer.json").exists() == (method == "spatialvla_legacy")


def test_infer_unnormalizes_to_the_training_targets():
    """After overfitting one sample, infer() on that sample's observation returns its absolute targets."""
    policy = build("baseline", horizon=2)
    batch = synthetic_batch(policy.config, 1, seed=5)
    fit_batch(policy, batch, 150, lr=2e-3)
    rgb = (batch["rgb"][0, 0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    cam = CameraObservation("front", rgb, batch["K"][0, 0].numpy(), 1.0, batch["depth_m"][0, 0].numpy(),
                            batch["depth_valid"][0, 0].numpy(), np.eye(4))
    obs = Observation(1.0, [cam], batch["proprio"][0].numpy(), batch["instruction"][0])
    chunk = policy.infer(obs)
    np.testing.assert_allclose(chunk.position_m, batch["action"][0, :, :, :3].numpy(), atol=0.02)
    np.testing.assert_allclose(chunk.gripper, batch["action"][0, :, :, 6].numpy(), atol=0.1)


def test_modalities_follow_what_the_observation_has():
    policy = build("falcon")
    assert policy.infer(observation(depth=True, pose=True)).modalities == ("rgb", "depth", "pose")
    assert policy.infer(observation(depth=False, pose=True)).modalities == ("rgb", "pose")
    assert policy.infer(observation(depth=False, pose=False)).modalities == ("rgb",)
    assert policy.infer(observation(), modalities=("rgb",)).modalities == ("rgb",)
    assert build("baseline").infer(observation()).modalities == ("rgb",)  # reports only what it consumes
    assert build("spatialvla_legacy").infer(observation()).modalities == ("rgb", "depth")


def test_bad_observations_are_named():
    from vla_ros.policies.processing import PolicyInputError

    policy = build("baseline")
    obs = observation()
    obs.cameras[0].name = "wrist"
    with pytest.raises(PolicyInputError, match=r"cameras: policy needs \['front'\]"):
        policy.infer(obs)
    obs = observation()
    obs.proprio = np.zeros(3)
    with pytest.raises(PolicyInputError, match="proprio: policy expects 8 values, got 3"):
        policy.infer(obs)


def test_checkpoint_mismatches_are_named(tmp_path):
    policy = build("baseline")
    save_checkpoint(policy, tmp_path)
    cfg_text = (tmp_path / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(cfg_text.replace("width: 96", "width: 64"))
    with pytest.raises(CheckpointError, match="does not match.*shapes"):
        load_policy(tmp_path)
    (tmp_path / "config.yaml").write_text(cfg_text.replace("proprio_dim: 8", "proprio_dim: 9"))
    with pytest.raises(CheckpointError, match=r"norm_stats.json: norm stats 'proprio' have 8 dims, expected 9"):
        load_policy(tmp_path)
    (tmp_path / "config.yaml").write_text(cfg_text)
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(CheckpointError, match="uses no tokenizer"):
        load_policy(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_policy(tmp_path / "nope")
    (tmp_path / "config.yaml").write_text("policy:\n  method: falcon\n  horizn: 3\n")
    with pytest.raises(CheckpointError, match="horizn"):
        load_policy(tmp_path)


def test_checkpoint_does_not_reread_external_weights(tmp_path):
    """A checkpoint of a policy built from a local ESM file loads after that file is gone."""
    from safetensors.torch import save_file

    from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig

    esm_cfg = tiny_config("falcon").method_args["esm"]
    torch.manual_seed(3)
    save_file(EmbodiedSpatialModel(ESMConfig(**esm_cfg)).state_dict(), str(tmp_path / "esm.safetensors"))
    policy = build("falcon", method_args={"architecture": "compact", "esm": esm_cfg,
                                 "esm_checkpoint": str(tmp_path / "esm.safetensors")})
    assert policy.esm_load_report == ([], [])
    save_checkpoint(policy, tmp_path / "ckpt")
    (tmp_path / "esm.safetensors").unlink()
    loaded = load_policy(tmp_path / "ckpt")
    torch.testing.assert_close(loaded.esm.state_dict(), policy.esm.state_dict())
    with pytest.raises(FileNotFoundError, match="esm.safetensors"):
        build("falcon", method_args={"architecture": "compact", "esm": esm_cfg,
                                 "esm_checkpoint": str(tmp_path / "esm.safetensors")})


def test_lstm_head_keeps_a_history_window_until_reset():
    policy = build("falcon", head={"kind": "lstm", "history": 3})
    assert policy.pool == "mean"  # FALCON pools spatial tokens by mean for the LSTM head
    obs = observation()
    first = policy.infer(obs)
    for _ in range(4):
        policy.infer(obs)
    assert len(policy.head._history) == 3
    policy.reset()
    assert policy.head._history == []
    np.testing.assert_array_equal(policy.infer(obs).position_m, first.position_m)


def test_the_policy_reads_its_proprio_joints_by_name(tmp_path):
    from vla_ros.data.dataset import DatasetError, DatasetWriter
    from vla_ros.data.torch_dataset import EpisodeDataset
    from vla_ros.policies.processing import PolicyInputError, observation_to_batch

    obs = observation()
    obs.proprio, obs.proprio_names = np.array([0.1, 0.2, 0.03], np.float32), ["j1", "j2", "finger"]
    batch = observation_to_batch(obs, ["front"], 32, 1, proprio_names=["finger"])
    assert batch["proprio"].tolist() == [[pytest.approx(0.03)]]
    with pytest.raises(PolicyInputError, match=r"proprio: joints \['wrist'\] are not among"):
        observation_to_batch(obs, ["front"], 32, 1, proprio_names=["wrist"])
    with pytest.raises(ConfigError, match="proprio_names"):
        tiny_config("baseline", proprio_dim=2, proprio_names=["finger"])
    # training reads the same joints out of a dataset's joint_names
    n = 5
    w = DatasetWriter(tmp_path / "ds", ["front"], ["arm"], ["j1", "j2", "finger"], 0.1, (8, 8))
    w.add_episode({"stamp_s": np.arange(n) * 0.1, "proprio": np.tile([0.1, 0.2, 0.03], (n, 1)),
                   "rgb__front": np.zeros((n, 8, 8, 3), np.uint8), "K__front": np.tile(np.eye(3), (n, 1, 1)),
                   "T_base_camera__front": np.tile(np.eye(4), (n, 1, 1)),
                   "action_position_m": np.zeros((n, 1, 3)), "action_quat_xyzw": np.tile([0, 0, 0, 1.0], (n, 1, 1)),
                   "action_gripper": np.ones((n, 1))}, "reach")
    w.close()
    ds = EpisodeDataset(tmp_path / "ds", 2, 8, "train", 0.0, proprio_names=["finger"])
    assert ds[0]["proprio"].tolist() == [pytest.approx(0.03)] and ds.norm_stats.dim("proprio") == 1
    with pytest.raises(DatasetError, match="proprio_names"):
        EpisodeDataset(tmp_path / "ds", 2, 8, "train", 0.0, proprio_names=["elbow"])


def test_random_shift_moves_the_principal_point_with_the_image(tmp_path):
    from vla_ros.data.dataset import DatasetWriter
    from vla_ros.data.torch_dataset import EpisodeDataset

    n, img = 3, np.zeros((3, 16, 16, 3), np.uint8)
    img[:, 5, 9] = 255  # one bright pixel at (u, v) = (9, 5)
    K = np.array([[20.0, 0, 7.5], [0, 20.0, 7.5], [0, 0, 1]])
    w = DatasetWriter(tmp_path / "ds", ["front"], ["arm"], ["finger"], 0.1, (16, 16))
    w.add_episode({"stamp_s": np.arange(n) * 0.1, "proprio": np.zeros((n, 1)), "rgb__front": img,
                   "depth_m__front": np.ones((n, 16, 16), np.float32), "K__front": np.tile(K, (n, 1, 1)),
                   "T_base_camera__front": np.tile(np.eye(4), (n, 1, 1)), "action_position_m": np.zeros((n, 1, 3)),
                   "action_quat_xyzw": np.tile([0, 0, 0, 1.0], (n, 1, 1)), "action_gripper": np.ones((n, 1))}, "x")
    w.close()
    ds = EpisodeDataset(tmp_path / "ds", 2, 16, "train", 0.0, shift_px=3)
    torch.manual_seed(0)
    offsets = set()
    for _ in range(30):
        item = ds[0]
        v, u = np.argwhere(item["rgb"][0, 0].numpy() > 0.5)[0]
        k = item["K"][0].numpy()
        assert (u - k[0, 2], v - k[1, 2]) == (9 - 7.5, 5 - 7.5)  # the pixel keeps its ray
        offsets.add((int(u), int(v)))
    assert len(offsets) > 5  # and it really moves
    assert EpisodeDataset(tmp_path / "ds", 2, 16, "train", 0.0).shift_px == 0


def test_spatial_softmax_finds_a_peak_and_the_conv_vlm_trains_and_reloads(tmp_path):
    from vla_ros.policies.backbones.conv_keypoints import spatial_softmax

    f = torch.full((1, 2, 5, 9), -1e4)
    f[0, 0, 1, 6] = 0.0  # channel 0 peaks at column 6 of 9, row 1 of 5
    f[0, 1] = 0.0  # channel 1 is flat: the centre
    xy = spatial_softmax(f)[0].tolist()  # [x0, x1, y0, y1]
    assert xy == [pytest.approx(0.5), pytest.approx(0.0, abs=1e-6), pytest.approx(-0.5), pytest.approx(0.0, abs=1e-6)]
    torch.manual_seed(0)
    cfg = tiny_config("baseline", vlm={"vision": "conv_keypoints", "keypoints": 8})
    policy = make_policy(cfg, synthetic_norm_stats(cfg))
    batch = synthetic_batch(cfg, 8, seed=0)
    history = fit_batch(policy, batch, 60, lr=1e-3)
    assert history[-1]["loss"] < history[0]["loss"] / 10
    save_checkpoint(policy, tmp_path / "ck")
    again = load_policy(tmp_path / "ck")
    obs = observation()
    np.testing.assert_array_equal(policy.infer(obs).position_m, again.infer(obs).position_m)
    with pytest.raises(ConfigError, match="vision"):
        tiny_config("baseline", vlm={"vision": "resnet"})


def test_subgoal_targets_are_the_next_grasp_and_release_and_train_an_auxiliary_head():
    from vla_ros.data.torch_dataset import gripper_event_targets

    # open for frames 0-2, closed (the grasp, at frame 3) until the release at frame 6; ee measured at x = t cm
    n = 8
    pos = np.zeros((n, 1, 3))
    pos[:, 0, 0] = [0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7]
    grip = np.array([1, 1, 1, 0, 0, 0, 1, 1.0])[:, None]
    ee = np.zeros((n, 1, 7))
    ee[:, 0, 0] = np.arange(n) * 0.01
    ep = {"action_position_m": pos, "action_gripper": grip, "ee_pose": ee}
    g = gripper_event_targets(ep)[:, 0, 0]
    expected = [0.35, 0.35, 0.35, 0.6, 0.6, 0.6, 0.7, 0.7] - np.arange(n) * 0.01
    np.testing.assert_allclose(g, expected, atol=1e-6)
    assert gripper_event_targets({"action_position_m": pos, "action_gripper": grip}) is None
    # the head is built only when weighted, and its loss comes on top of the action loss
    assert not hasattr(build("baseline"), "subgoal_head")
    cfg = tiny_config("falcon", head={"subgoal_weight": 1.0})
    policy = make_policy(cfg, synthetic_norm_stats(cfg))
    batch = synthetic_batch(cfg, 4, seed=3)
    batch["subgoal_m"] = torch.full((4, 1, 3), 0.1)
    history = fit_batch(policy, batch, 40, lr=2e-3)
    assert history[-1]["subgoal_rmse_m"] < 0.2 * history[0]["subgoal_rmse_m"]
    assert history[-1]["loss"] > history[-1]["action_loss"]
