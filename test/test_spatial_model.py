"""The ESM loads VGGT's key layout (aggregator and heads), fails clearly on a wrong shape, counts ~909M for the
aggregator at paper scale, and its pieces have known answers (RoPE relative positions, pose quaternions)."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from vla_ros.policies.spatial_model.esm import (
    Aggregator,
    EmbodiedSpatialModel,
    ESMConfig,
    StateDictMismatch,
    _matrix_to_quat_xyzw,
    load_esm_state_dict,
)
from vla_ros.policies.spatial_model.heads import add_uv_pos_embed, uv_grid
from vla_ros.policies.spatial_model.layers import rope_2d

# Key names and shapes of the real VGGT-1B checkpoint (facebookresearch/vggt), a sample over every part.
VGGT_1B_SHAPES = {
    "aggregator.camera_token": (1, 2, 1, 1024),
    "aggregator.register_token": (1, 2, 4, 1024),
    "aggregator.patch_embed.cls_token": (1, 1, 1024),
    "aggregator.patch_embed.pos_embed": (1, 1370, 1024),
    "aggregator.patch_embed.register_tokens": (1, 4, 1024),
    "aggregator.patch_embed.mask_token": (1, 1024),
    "aggregator.patch_embed.patch_embed.proj.weight": (1024, 3, 14, 14),
    "aggregator.patch_embed.blocks.23.mlp.fc2.weight": (1024, 4096),
    "aggregator.patch_embed.blocks.0.ls1.gamma": (1024,),
    "aggregator.patch_embed.norm.weight": (1024,),
    "aggregator.frame_blocks.0.attn.qkv.weight": (3072, 1024),
    "aggregator.frame_blocks.0.attn.q_norm.weight": (64,),
    "aggregator.frame_blocks.23.attn.k_norm.bias": (64,),
    "aggregator.global_blocks.23.ls2.gamma": (1024,),
    "aggregator.global_blocks.0.attn.proj.weight": (1024, 1024),
    "camera_head.token_norm.weight": (2048,),
    "camera_head.trunk_norm.bias": (2048,),
    "camera_head.trunk.0.attn.qkv.weight": (6144, 2048),
    "camera_head.trunk.3.mlp.fc1.weight": (8192, 2048),
    "camera_head.trunk.3.ls2.gamma": (2048,),
    "camera_head.empty_pose_tokens": (1, 1, 9),
    "camera_head.embed_pose.weight": (2048, 9),
    "camera_head.poseLN_modulation.1.weight": (6144, 2048),
    "camera_head.pose_branch.fc1.weight": (1024, 2048),
    "camera_head.pose_branch.fc2.weight": (9, 1024),
    "depth_head.norm.weight": (2048,),
    "depth_head.projects.0.weight": (256, 2048, 1, 1),
    "depth_head.projects.3.weight": (1024, 2048, 1, 1),
    "depth_head.resize_layers.0.weight": (256, 256, 4, 4),
    "depth_head.resize_layers.1.weight": (512, 512, 2, 2),
    "depth_head.resize_layers.3.weight": (1024, 1024, 3, 3),
    "depth_head.scratch.layer1_rn.weight": (256, 256, 3, 3),
    "depth_head.scratch.layer4_rn.weight": (256, 1024, 3, 3),
    "depth_head.scratch.refinenet1.out_conv.weight": (256, 256, 1, 1),
    "depth_head.scratch.refinenet1.resConfUnit1.conv1.weight": (256, 256, 3, 3),
    "depth_head.scratch.refinenet4.resConfUnit2.conv2.bias": (256,),
    "depth_head.scratch.output_conv1.weight": (128, 256, 3, 3),
    "depth_head.scratch.output_conv2.0.weight": (32, 128, 3, 3),
    "depth_head.scratch.output_conv2.2.weight": (2, 32, 1, 1),
    "point_head.scratch.output_conv2.2.weight": (4, 32, 1, 1),
}


@pytest.fixture(scope="module")
def vggt_meta():
    with torch.device("meta"):
        return EmbodiedSpatialModel(ESMConfig.vggt_1b(depth_input=False, pose_input=False))


def test_paper_scale_on_meta_has_the_vggt_layout_and_909m_aggregator(vggt_meta):
    shapes = {k: tuple(v.shape) for k, v in vggt_meta.state_dict().items()}
    for key, shape in VGGT_1B_SHAPES.items():
        assert shapes.get(key) == shape, (key, shapes.get(key))
    assert "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight" not in shapes  # VGGT: no residual there
    assert not any("q_norm" in k for k in shapes if k.startswith("camera_head."))  # camera trunk: no qk-norm
    n = sum(p.numel() for p in vggt_meta.aggregator.parameters())
    assert abs(n / 1e6 - 909) < 2, n
    assert vggt_meta.aggregator.patch_start_idx == 5


def test_falcon_extras_have_the_documented_shapes():
    with torch.device("meta"):
        agg = Aggregator(ESMConfig.vggt_1b())
    sd = {k: tuple(v.shape) for k, v in agg.state_dict().items()}
    assert sd["depth_patch_embed.proj.weight"] == (1024, 2, 14, 14)
    assert sd["depth_placeholder"] == (1, 1, 1024)
    assert sd["pose_embedding.weight"] == (1024, 9)
    assert sd["camera_placeholder"] == (1, 1, 1024)


def test_a_vggt_1b_state_dict_loads_on_meta_into_a_falcon_esm_and_reports_keys(vggt_meta):
    src = dict(vggt_meta.state_dict())
    src["track_head.fnet.norm.weight"] = torch.empty(128, device="meta")  # optional VGGT head
    with torch.device("meta"):
        falcon_esm = EmbodiedSpatialModel(ESMConfig.vggt_1b(point_head=False))
    missing, unexpected = load_esm_state_dict(falcon_esm, src)
    assert sorted(missing) == ["aggregator.camera_placeholder", "aggregator.depth_patch_embed.proj.bias",
                               "aggregator.depth_patch_embed.proj.weight", "aggregator.depth_placeholder",
                               "aggregator.pose_embedding.bias", "aggregator.pose_embedding.weight"]
    assert "track_head.fnet.norm.weight" in unexpected
    assert any(k.startswith("point_head.") for k in unexpected)
    bad = dict(src)
    bad["depth_head.projects.2.weight"] = torch.empty(1024, 1024, 1, 1, device="meta")
    with pytest.raises(StateDictMismatch, match=r"depth_head.projects.2.weight: checkpoint has shape "
                                                r"\(1024, 1024, 1, 1\), model expects \(1024, 2048, 1, 1\)"):
        load_esm_state_dict(falcon_esm, bad)


def small_cfg(**kw):
    base = dict(embed_dim=32, heads=2, depth=2, patch_size=8, img_size=32, dino_depth=1, depth_input=False,
                pose_input=False, camera_head=True, depth_head=True, head_heads=2, dpt_features=8,
                dpt_out_channels=[4, 8, 8, 8])
    return ESMConfig(**{**base, **kw})


def test_reduced_width_weights_load_by_name_and_give_the_same_outputs():
    torch.manual_seed(0)
    src_model = EmbodiedSpatialModel(small_cfg()).eval()
    src = dict(src_model.state_dict())
    src["point_head.projects.0.weight"] = torch.zeros(4, 64, 1, 1)  # optional heads are reported, not fatal
    torch.manual_seed(1)
    dst = EmbodiedSpatialModel(small_cfg()).eval()
    missing, unexpected = load_esm_state_dict(dst, {"module." + k: v for k, v in src.items()}, {"module.": ""})
    assert missing == [] and unexpected == ["point_head.projects.0.weight"]
    x = torch.rand(1, 2, 3, 32, 32)
    with torch.no_grad():
        a, b = src_model(x), dst(x)
    torch.testing.assert_close(a["depth_m"], b["depth_m"])
    torch.testing.assert_close(a["pose_enc"], b["pose_enc"])
    bad = dict(src)
    bad["aggregator.camera_token"] = torch.zeros(1, 2, 1, 16)
    with pytest.raises(StateDictMismatch, match=r"aggregator.camera_token: checkpoint has shape \(1, 2, 1, 16\)"):
        load_esm_state_dict(dst, bad)


def test_forward_outputs_per_layer_concat_and_heads():
    cfg = small_cfg(point_head=True, depth=3, depth_input=True, pose_input=True)
    esm = EmbodiedSpatialModel(cfg)
    out = esm(torch.rand(2, 3, 3, 32, 48))
    assert len(out["layers"]) == 3 and out["patch_start_idx"] == 5
    assert out["layers"][-1].shape == (2, 3, 5 + 4 * 6, 2 * cfg.embed_dim)
    assert out["depth_m"].shape == (2, 3, 32, 48) and (out["depth_m"] > 0).all()
    assert out["depth_conf"].shape == (2, 3, 32, 48) and (out["depth_conf"] > 1).all()
    assert out["world_points"].shape == (2, 3, 32, 48, 3)
    assert out["pose_enc"].shape == (2, 3, 9) and (out["pose_enc"][..., 7:] >= 0).all()  # fov through relu
    assert len(out["pose_enc_list"]) == 4


def test_rope_depends_only_on_relative_position():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    p = torch.tensor([[3, 5]])
    torch.testing.assert_close(rope_2d(q, torch.zeros(1, 2, dtype=torch.long)), q)  # position 0: identity
    torch.testing.assert_close(rope_2d(q, p).norm(), q.norm())  # a rotation

    def dot(pq, pk):
        return (rope_2d(q, torch.tensor([pq])) * rope_2d(k, torch.tensor([pk]))).sum()
    torch.testing.assert_close(dot([3, 5], [1, 2]), dot([12, 7], [10, 4]))


def test_uv_grid_and_dpt_position_embedding():
    g = uv_grid(4, 2, 2.0, torch.zeros(1))
    d = (2.0 ** 2 + 1) ** 0.5
    np.testing.assert_allclose(g[0, 0].numpy(), [-2 / d * 3 / 4, -1 / d * 1 / 2], rtol=1e-6)
    np.testing.assert_allclose(g[1, 3].numpy(), [2 / d * 3 / 4, 1 / d * 1 / 2], rtol=1e-6)
    x = add_uv_pos_embed(torch.zeros(1, 8, 2, 4), 8, 4)
    # channel 0 is sin(u * omega_0 ** 0) scaled by 0.1; channel 2 its cosine
    np.testing.assert_allclose(x[0, 0].numpy(), 0.1 * np.sin(g[..., 0].numpy()), rtol=1e-5)
    np.testing.assert_allclose(x[0, 2].numpy(), 0.1 * np.cos(g[..., 0].numpy()), rtol=1e-5)


def test_rotation_to_quaternion_is_exact_including_180_degrees():
    rots = Rotation.concatenate([Rotation.random(200, random_state=0),
                                 Rotation.from_rotvec([[np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi]])])
    q = _matrix_to_quat_xyzw(torch.tensor(rots.as_matrix())).numpy()
    ref = rots.as_quat()
    ref = np.where(ref[:, 3:4] < 0, -ref, ref)
    np.testing.assert_allclose(np.abs(np.sum(q * ref, -1)), 1.0, atol=1e-9)


def test_bad_config_names_the_key():
    from vla_ros.core.config import ConfigError

    with pytest.raises(ConfigError, match="dpt_layers"):
        ESMConfig(depth=2, dpt_layers=[0, 1, 2, 3])
    with pytest.raises(ConfigError, match="embed_dim"):
        ESMConfig(embed_dim=30, heads=4)
