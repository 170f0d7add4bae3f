"""The three methods (and the baseline) behind one interface: training, inference, checkpoints, known answers."""
import numpy as np
import pytest
import torch

from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.factory import available_methods, load_policy, make_policy, save_checkpoint, tiny_config
from vla_ros.policies.falcon.modeling_falcon import sample_injection
from vla_ros.training.checkpoint import CheckpointError
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats

METHODS = ["baseline", "falcon", "spatial_forcing", "spatialvla"]


def test_methods_are_found_by_name():
    assert available_methods() == sorted(METHODS)


def build(method, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = tiny_config(method, **kw)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def observation(depth=True, pose=True, seed=0):
    rng = np.random.default_rng(seed)
    cam = CameraObservation(name="front", rgb=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                            K=np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]), stamp_s=12.5,
                            depth_m=np.full((48, 64), 0.8, np.float32) if depth else None,
                            depth_valid=np.ones((48, 64), bool) if depth else None,
                            T_base_camera=np.eye(4) if pose else None)
    return Observation(stamp_s=12.5, cameras=[cam], proprio=np.zeros(8, np.float32), instruction="reach the block")


@pytest.mark.parametrize("method", METHODS)
def test_tiny_config_overfits_a_fixed_batch(method):
    policy = build(method)
    batch = synthetic_batch(policy.config, 8, seed=1)
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-3)
    first = None
    for _ in range(60):
        loss, metrics = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else metrics["loss"]
    assert metrics["loss"] <= first / 10, (method, first, metrics)
    if method == "spatial_forcing":
        assert metrics["align_loss"] < 0.5


def test_spatial_forcing_alignment_loss_goes_down_and_teacher_is_not_saved(tmp_path):
    policy = build("spatial_forcing")
    batch = synthetic_batch(policy.config, 8, seed=2)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    aligns = []
    for _ in range(25):
        loss, m = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        aligns.append(m["align_loss"])
    assert aligns[-1] < aligns[0] * 0.5
    assert not any(k.startswith(("teacher", "_teacher")) for k in policy.state_dict())
    save_checkpoint(policy, tmp_path)
    from safetensors.torch import load_file

    assert not any("teacher" in k for k in load_file(str(tmp_path / "model.safetensors")))


def test_falcon_zero_initialised_adapter_equals_the_no_esm_head():
    base, falcon = build("baseline", seed=7), build("falcon", seed=7)
    batch = synthetic_batch(falcon.config, 4, seed=3)
    with torch.no_grad():
        a = base.predict_actions(batch, ("rgb",))
        b = falcon.predict_actions(batch, ("rgb", "depth", "pose"))
    torch.testing.assert_close(a, b)


def test_injection_frequencies_match_p():
    g = torch.Generator().manual_seed(0)
    on = sample_injection(200_000, 0.33, generator=g)
    assert abs((~on).float().mean().item() - 0.33) < 0.005
    avail = torch.zeros(1000, dtype=torch.bool)
    assert not sample_injection(1000, 0.0, avail).any()


@pytest.mark.parametrize("method", METHODS)
def test_save_load_infer_identical(method, tmp_path):
    policy = build(method)
    save_checkpoint(policy, tmp_path / method)
    loaded = load_policy(tmp_path / method)
    obs = observation()
    a, b = policy.infer(obs), loaded.infer(obs)
    np.testing.assert_array_equal(a.position_m, b.position_m)
    np.testing.assert_array_equal(a.gripper, b.gripper)
    assert a.position_m.shape == (4, 1, 3) and ((a.gripper >= 0) & (a.gripper <= 1)).all()
    assert a.stamp_s == 12.5 and a.method == method


def test_modalities_follow_what_the_observation_has():
    policy = build("falcon")
    assert policy.infer(observation(depth=True, pose=True)).modalities == ("rgb", "depth", "pose")
    assert policy.infer(observation(depth=False, pose=True)).modalities == ("rgb", "pose")
    assert policy.infer(observation(depth=False, pose=False)).modalities == ("rgb",)
    assert policy.infer(observation(), modalities=("rgb",)).modalities == ("rgb",)


def test_checkpoint_mismatches_are_named(tmp_path):
    policy = build("baseline")
    save_checkpoint(policy, tmp_path)
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace("width: 96", "width: 64"))
    with pytest.raises(CheckpointError, match="does not match.*shapes"):
        load_policy(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_policy(tmp_path / "nope")
    (tmp_path / "config.yaml").write_text("policy:\n  method: falcon\n  horizn: 3\n")
    with pytest.raises(CheckpointError, match="horizn"):
        load_policy(tmp_path)


def test_spatialvla_estimates_depth_from_a_local_esm_when_the_sensor_has_none(tmp_path):
    from safetensors.torch import save_file

    from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig

    est_cfg = {"embed_dim": 32, "heads": 2, "depth": 1, "patch_size": 8, "img_size": 64, "dino_depth": 1,
               "depth_input": False, "pose_input": False}
    save_file(EmbodiedSpatialModel(ESMConfig(**est_cfg)).state_dict(), str(tmp_path / "esm.safetensors"))
    policy = build("spatialvla", method_args={"depth_estimator_checkpoint": str(tmp_path / "esm.safetensors"),
                                              "depth_estimator": est_cfg})
    batch = policy.observation_to_batch(observation(depth=False))
    feats = policy.encode(batch, ("rgb",))
    assert feats["ego3d"] is True  # Ego3D from estimated depth
    assert policy.infer(observation(depth=False)).position_m.shape == (4, 1, 3)
