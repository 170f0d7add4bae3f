"""The ESM loads VGGT's key layout, fails clearly on a wrong shape, and counts ~909M at paper scale."""
import pytest
import torch

from vla_ros.policies.spatial_model.esm import (
    Aggregator,
    EmbodiedSpatialModel,
    ESMConfig,
    StateDictMismatch,
    load_esm_state_dict,
)

# Key names and shapes of the real VGGT-1B aggregator (facebookresearch/vggt), a sample.
VGGT_1B_SHAPES = {
    "aggregator.camera_token": (1, 2, 1, 1024),
    "aggregator.register_token": (1, 2, 4, 1024),
    "aggregator.patch_embed.cls_token": (1, 1, 1024),
    "aggregator.patch_embed.pos_embed": (1, 1370, 1024),
    "aggregator.patch_embed.register_tokens": (1, 4, 1024),
    "aggregator.patch_embed.patch_embed.proj.weight": (1024, 3, 14, 14),
    "aggregator.patch_embed.blocks.23.mlp.fc2.weight": (1024, 4096),
    "aggregator.frame_blocks.0.attn.qkv.weight": (3072, 1024),
    "aggregator.frame_blocks.0.attn.q_norm.weight": (64,),
    "aggregator.global_blocks.23.ls2.gamma": (1024,),
}


def test_paper_scale_aggregator_on_meta_has_vggt_keys_and_909m_params():
    with torch.device("meta"):
        esm = EmbodiedSpatialModel(ESMConfig.vggt_1b(depth_input=False, pose_input=False))
    shapes = {k: tuple(v.shape) for k, v in esm.state_dict().items()}
    for key, shape in VGGT_1B_SHAPES.items():
        assert shapes.get(key) == shape, key
    n = sum(p.numel() for p in esm.aggregator.parameters())
    assert abs(n / 1e6 - 909) < 5, n
    assert esm.aggregator.patch_start_idx == 5


def test_falcon_extras_have_the_documented_shapes():
    with torch.device("meta"):
        agg = Aggregator(ESMConfig.vggt_1b())
    sd = {k: tuple(v.shape) for k, v in agg.state_dict().items()}
    assert sd["depth_patch_embed.proj.weight"] == (1024, 2, 14, 14)
    assert sd["depth_placeholder"] == (1, 1, 1024)
    assert sd["pose_embedding.weight"] == (1024, 9)
    assert sd["camera_placeholder"] == (1, 1, 1024)


def test_loads_a_vggt_layout_state_dict_at_reduced_width_and_reports_keys():
    cfg = ESMConfig(embed_dim=32, heads=2, depth=2, patch_size=8, img_size=32, dino_depth=1,
                    depth_input=False, pose_input=False)
    src = EmbodiedSpatialModel(cfg).state_dict()
    src["point_head.proj.weight"] = torch.zeros(3)  # optional VGGT heads are reported, not fatal
    dst = EmbodiedSpatialModel(ESMConfig(**{**cfg.__dict__, "depth_input": True, "pose_input": True}))
    missing, unexpected = load_esm_state_dict(dst, src)
    assert "point_head.proj.weight" in unexpected
    assert "aggregator.depth_placeholder" in missing and "aggregator.pose_embedding.weight" in missing
    torch.testing.assert_close(dst.state_dict()["aggregator.camera_token"], src["aggregator.camera_token"])
    bad = dict(src)
    bad["aggregator.camera_token"] = torch.zeros(1, 2, 1, 16)
    with pytest.raises(StateDictMismatch, match=r"aggregator.camera_token: checkpoint has shape \(1, 2, 1, 16\)"):
        load_esm_state_dict(dst, bad)


def test_forward_shapes_and_per_layer_concat():
    cfg = ESMConfig()
    esm = EmbodiedSpatialModel(cfg)
    out = esm(torch.rand(2, 3, 3, 64, 64))
    assert len(out["layers"]) == cfg.depth
    assert out["layers"][-1].shape == (2, 3, 5 + 64, 2 * cfg.embed_dim)
    assert out["depth_m"].shape == (2, 3, 64, 64) and out["pose_enc"].shape == (2, 3, 9)
