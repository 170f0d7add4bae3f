"""Ego3D back-projection against a hand-computed point; sin-cos PE; pose encoding."""
import numpy as np
import torch

from vla_ros.policies.spatial_forcing.modeling_spatial_forcing import alignment_target, sincos_2d
from vla_ros.policies.spatial_model.esm import pose_encoding
from vla_ros.policies.spatialvla_legacy.ego3d import (
    Ego3DEncoding,
    backproject_patch_points,
    normalise_points,
    sinusoidal,
)


def test_backprojection_matches_a_hand_computed_point():
    H = W = 16
    P = 8
    K = torch.tensor([[20.0, 0, 7.5], [0, 25.0, 7.5], [0, 0, 1]])
    depth = torch.full((1, 1, H, W), 2.0)
    depth[0, 0, 10, 14] = 1.5  # patch (1, 1), sub-point (a=0, b=1): row 8 + 2, col 8 + 2 + 4
    pts = backproject_patch_points(depth, K[None, None], P)
    assert pts.shape == (1, 4, 12)
    # hand computation: x = (u - cx) / fx * d, y = (v - cy) / fy * d, z = d
    expected = [(14 - 7.5) / 20.0 * 1.5, (10 - 7.5) / 25.0 * 1.5, 1.5]
    np.testing.assert_allclose(pts[0, 3].reshape(4, 3)[1].numpy(), expected, rtol=1e-6)
    # patch (0, 0), sub-point (0, 0) is pixel (2, 2) at 2 m
    np.testing.assert_allclose(pts[0, 0, :3].numpy(), [(2 - 7.5) / 20 * 2, (2 - 7.5) / 25 * 2, 2.0], rtol=1e-6)
    n = normalise_points(pts)
    np.testing.assert_allclose(n[0, 0, :3].numpy(), (pts[0, 0, :3].numpy() - [0, 0, 2]) / 2, rtol=1e-6)


def test_sinusoidal_keeps_raw_and_has_8_frequencies():
    x = torch.tensor([[0.25]])
    e = sinusoidal(x, 8)
    assert e.shape == (1, 17)
    assert e[0, 0] == 0.25
    np.testing.assert_allclose(e[0, 1:9].numpy(), np.sin(0.25 * np.pi * 2.0 ** np.arange(8)), atol=1e-5)
    assert Ego3DEncoding(32, 8)(torch.rand(2, 1, 16, 16), torch.eye(3).expand(2, 1, 3, 3)).shape == (2, 4, 32)


def test_sincos_pe_and_resize_shape():
    pe = sincos_2d(8, 2, 3)
    assert pe.shape == (6, 8)
    np.testing.assert_allclose(pe[0].numpy(), [0, 0, 1, 1, 0, 0, 1, 1], atol=1e-7)
    tgt = alignment_target(torch.zeros(2, 1, 16, 8), (8, 8), 0.1)
    assert tgt.shape == (2, 64, 8)


def test_pose_encoding_is_relative_to_first_camera():
    T = torch.eye(4).repeat(1, 2, 1, 1)
    T[0, 0, :3, 3] = torch.tensor([1.0, 2.0, 3.0])
    T[0, 1, :3, 3] = torch.tensor([1.5, 2.0, 3.0])
    K = torch.tensor([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]]).expand(1, 2, 3, 3)
    enc = pose_encoding(T, K, (64, 64))
    np.testing.assert_allclose(enc[0, 0, :7].numpy(), [0, 0, 0, 0, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(enc[0, 1, :3].numpy(), [0.5, 0, 0], atol=1e-6)
    np.testing.assert_allclose(enc[0, 0, 7].item(), 2 * np.arctan(64 / 100), rtol=1e-6)
