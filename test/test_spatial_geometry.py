"""Spatial Forcing's sin-cos PE and alignment target; the ESM's pose encoding (Ego3D is in test_ego3d.py)."""
import numpy as np
import torch

from vla_ros.policies.spatial_forcing.modeling_spatial_forcing import alignment_target, sincos_2d
from vla_ros.policies.spatial_model.esm import pose_encoding


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
