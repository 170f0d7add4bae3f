"""SpatialVLA's Ego3D position encoding: back-projection against hand-computed points, normalisation, the
sinusoidal code, its addition to the vision tokens, and where depth comes from (sensor, else a local ESM)."""
import numpy as np
import torch

from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.spatialvla_legacy.ego3d import (
    Ego3DEncoding,
    backproject_patch_points,
    normalise_points,
    sinusoidal,
)
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats


def test_backprojection_matches_hand_computed_points():
    H, W, P = 8, 12, 4  # a 2 x 3 patch grid, non-square image
    K = torch.tensor([[30.0, 0.0, 5.5], [0.0, 40.0, 3.5], [0.0, 0.0, 1.0]])
    depth = torch.arange(H * W, dtype=torch.float32).reshape(1, 1, H, W) / 10 + 0.5
    pts = backproject_patch_points(depth, K[None, None], P)
    assert pts.shape == (1, 6, 12)
    # patch (row 1, col 2) is token 5; its 4 points are pixels (v, u) = (4 + 1 + 2a, 8 + 1 + 2b), a, b in {0, 1}
    for j, (a, b) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        v, u = 5 + 2 * a, 9 + 2 * b
        d = (v * W + u) / 10 + 0.5
        expected = np.linalg.inv(K.numpy()) @ np.array([u, v, 1.0]) * d
        np.testing.assert_allclose(pts[0, 5, 3 * j:3 * j + 3].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(pts[0, 0, :3].numpy(), [(1 - 5.5) / 30 * 1.8, (1 - 3.5) / 40 * 1.8, 1.8], rtol=1e-6)


def test_backprojection_of_one_near_pixel_with_8_pixel_patches():
    H = W = 16
    K = torch.tensor([[20.0, 0, 7.5], [0, 25.0, 7.5], [0, 0, 1]])
    depth = torch.full((1, 1, H, W), 2.0)
    depth[0, 0, 10, 14] = 1.5  # patch (1, 1), sub-point (a=0, b=1): row 8 + 2, col 8 + 2 + 4
    pts = backproject_patch_points(depth, K[None, None], 8)
    assert pts.shape == (1, 4, 12)
    # x = (u - cx) / fx * d, y = (v - cy) / fy * d, z = d
    expected = [(14 - 7.5) / 20.0 * 1.5, (10 - 7.5) / 25.0 * 1.5, 1.5]
    np.testing.assert_allclose(pts[0, 3].reshape(4, 3)[1].numpy(), expected, rtol=1e-6)
    # patch (0, 0), sub-point (0, 0) is pixel (2, 2) at 2 m
    np.testing.assert_allclose(pts[0, 0, :3].numpy(), [(2 - 7.5) / 20 * 2, (2 - 7.5) / 25 * 2, 2.0], rtol=1e-6)
    n = normalise_points(pts)
    np.testing.assert_allclose(n[0, 0, :3].numpy(), (pts[0, 0, :3].numpy() - [0, 0, 2]) / 2, rtol=1e-6)


def test_normalisation_centres_on_two_metres_ahead():
    pts = torch.tensor([[0.0, 0.0, 2.0] * 2 + [2.0, -2.0, 4.0] * 2])
    np.testing.assert_allclose(normalise_points(pts).numpy(), [[0, 0, 0] * 2 + [1, -1, 1] * 2])


def test_sinusoidal_code_keeps_the_raw_value_and_8_log_spaced_frequencies():
    x = torch.tensor([[0.3, -0.7]])
    e = sinusoidal(x, 8)
    assert e.shape == (1, 2 * 17)
    np.testing.assert_allclose(e[0, :2].numpy(), [0.3, -0.7])
    ang = np.array([0.3, -0.7])[:, None] * np.pi * 2.0 ** np.arange(8)
    np.testing.assert_allclose(e[0, 2:18].numpy(), np.sin(ang).ravel(), atol=5e-5)  # float32 at 128 pi
    np.testing.assert_allclose(e[0, 18:].numpy(), np.cos(ang).ravel(), atol=5e-5)
    one = sinusoidal(torch.tensor([[0.25]]), 8)
    assert one.shape == (1, 17) and one[0, 0] == 0.25
    np.testing.assert_allclose(one[0, 1:9].numpy(), np.sin(0.25 * np.pi * 2.0 ** np.arange(8)), atol=1e-5)
    enc = Ego3DEncoding(32, 8)
    assert enc.mlp[0].in_features == 12 * 17
    assert enc(torch.rand(2, 1, 16, 16) + 0.5, torch.eye(3).expand(2, 1, 3, 3)).shape == (2, 4, 32)
    assert enc(torch.rand(2, 1, 16, 16), torch.eye(3).expand(2, 1, 3, 3)).shape == (2, 4, 32)  # depth near 0 too


def build(**kw):
    torch.manual_seed(0)
    cfg = tiny_config("spatialvla_legacy", **kw)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def test_ego3d_is_added_to_the_vision_tokens():
    policy = build()
    batch = synthetic_batch(policy.config, 2, seed=1)
    with torch.no_grad():
        with_depth = policy.encode(batch, ("rgb", "depth"))
        rgb_only = policy.encode(batch, ("rgb",))
        pe = policy.ego3d(batch["depth_m"], batch["K"])
    assert with_depth["ego3d"] and not rgb_only["ego3d"]
    n = policy.vlm.n_vision
    torch.testing.assert_close(with_depth["hidden_states"][0][:, :n] - rgb_only["hidden_states"][0][:, :n], pe)
    torch.testing.assert_close(with_depth["hidden_states"][0][:, n:], rgb_only["hidden_states"][0][:, n:])


def test_depth_from_the_sensor_else_from_a_local_esm(tmp_path):
    from safetensors.torch import save_file

    from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig

    est = {"embed_dim": 32, "heads": 2, "depth": 1, "patch_size": 8, "img_size": 32, "dino_depth": 1,
           "depth_input": False, "pose_input": False, "depth_head": True, "dpt_features": 8,
           "dpt_out_channels": [4, 8, 8, 8]}
    torch.manual_seed(5)
    esm = EmbodiedSpatialModel(ESMConfig(**est)).eval()
    save_file(esm.state_dict(), str(tmp_path / "esm.safetensors"))
    policy = build(method_args={"depth_estimator_checkpoint": str(tmp_path / "esm.safetensors"),
                                "depth_estimator": est})
    assert policy.depth_estimator_load_report == ([], [])
    batch = synthetic_batch(policy.config, 1, seed=2)
    with torch.no_grad():
        sensor = policy.encode(batch, ("rgb", "depth"))["hidden_states"][0]
        expected_sensor = policy.vlm.vision_tokens(batch["rgb"])[0] + policy.vlm.vision_pos + policy.ego3d(
            batch["depth_m"], batch["K"])
        torch.testing.assert_close(sensor[:, :policy.vlm.n_vision], expected_sensor)
        # no sensor depth: the estimator's depth (run at its 32 px input, resized back to 64 px) feeds Ego3D
        batch["depth_valid"][:] = False
        feats = policy.encode(batch, ("rgb", "depth"))
        small = torch.nn.functional.interpolate(batch["rgb"][0], size=(32, 32), mode="bilinear", align_corners=False)
        d = esm(small[None])["depth_m"]
        d = torch.nn.functional.interpolate(d[0][:, None], size=(64, 64), mode="nearest")[:, 0][None]
        expected = policy.vlm.vision_tokens(batch["rgb"])[0] + policy.vlm.vision_pos + policy.ego3d(d, batch["K"])
    assert feats["ego3d"]
    torch.testing.assert_close(feats["hidden_states"][0][:, :policy.vlm.n_vision], expected)
