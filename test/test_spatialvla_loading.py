"""Released SpatialVLA folders: a tiny-width folder in exactly the released layout loads through the real loader;
the paper-scale model's key names and shapes equal those derived from transformers' classes and the reference's
attribute names; bad folders give named errors; cards and `vla-ros checkpoint inspect`."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    SiglipVisionConfig,
    SiglipVisionModel,
    ZoeDepthConfig,
    ZoeDepthForDepthEstimation,
)
from transformers.conversion_mapping import get_model_conversion_mapping

from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.cards import available_cards, load_card, match_card
from vla_ros.policies.checkpoint_io import load_policy
from vla_ros.policies.config import PolicyConfig
from vla_ros.policies.factory import make_policy, released_loader, tiny_config
from vla_ros.policies.spatialvla.loading_spatialvla import (
    ReleasedCheckpointError,
    build_empty,
    load_released,
    save_released,
)

STATS = {"bridge_orig/1.0.0": {"action": {"q01": [-0.02, -0.03, -0.04, -0.1, -0.2, -0.3, 0.0],
                                          "q99": [0.02, 0.03, 0.04, 0.1, 0.2, 0.3, 1.0],
                                          "mask": [True] * 6 + [False]}},
         "fractal20220817_data/0.1.0": {"action": {"q01": [-0.1] * 7, "q99": [0.1] * 7}}}


def write_tiny_folder(path, seed=0):
    torch.manual_seed(seed)
    cfg = tiny_config("spatialvla", image_size=224, method_args={"statistics": STATS,
                                                                  "unnorm_key": "bridge_orig/1.0.0"})
    policy = make_policy(cfg)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        n = policy.spatial_embed_tokens.num_embeddings
        policy.language_model.model.embed_tokens.weight[-n:] = policy.spatial_embed_tokens.weight
    save_released(policy, path, n_shards=3)
    return policy.eval()


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("released") / "spatialvla-tiny"
    return path, write_tiny_folder(path)


def observation():
    rng = np.random.default_rng(3)
    cam = CameraObservation("front", rng.integers(0, 255, (240, 320, 3), dtype=np.uint8),
                            np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]), 5.0)
    return Observation(5.0, [cam], np.zeros(7, np.float32), "pick up the carrot")


def test_the_released_layout_has_the_reference_files_and_key_prefixes(tiny_folder):
    path, _ = tiny_folder
    names = sorted(p.name for p in path.iterdir())
    assert {"config.json", "model.safetensors.index.json", "processor_config.json", "preprocessor_config.json",
            "tokenizer.json"} <= set(names)
    shards = [n for n in names if n.endswith(".safetensors")]
    assert shards == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    prefixes = {".".join(k.split(".")[:2]) for k in index}
    assert prefixes == {"vision_tower.vision_model", "multi_modal_projector.linear", "language_model.model",
                        "language_model.lm_head", "vision_zoe_model.backbone", "vision_zoe_model.neck",
                        "vision_zoe_model.relative_head", "vision_zoe_model.metric_head",
                        "position_embedding_3d.position_embedding_head", "spatial_embed_tokens.weight"}
    assert "vision_zoe_model.backbone.encoder.layer.0.attention.attention.query.weight" in index  # 4.x BEiT names
    assert json.loads((path / "config.json").read_text())["model_type"] == "spatialvla"


def test_tiny_folder_loads_key_for_key_and_infers_like_the_model_that_wrote_it(tiny_folder):
    path, policy = tiny_folder
    assert released_loader(path) is not None
    loaded = load_policy(path, "cpu", {"unnorm_key": "bridge_orig/1.0.0"})
    a, b = policy.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    obs = observation()
    ca, cb = policy.infer(obs), loaded.infer(obs)
    np.testing.assert_array_equal(ca.position_m, cb.position_m)
    np.testing.assert_array_equal(ca.quat_xyzw, cb.quat_xyzw)
    assert cb.reference == "delta_target" and cb.policy_name == "spatialvla-tiny"


@pytest.mark.parametrize("dtype,torch_dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_dtype_option(tiny_folder, dtype, torch_dtype):
    path, _ = tiny_folder
    policy = load_released(path, "cpu", {"unnorm_key": "bridge_orig/1.0.0", "dtype": dtype})
    assert {p.dtype for p in policy.parameters()} == {torch_dtype}
    if dtype == "bfloat16":
        chunk = policy.infer(observation())
        assert np.isfinite(chunk.position_m).all()


def _copy(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_bad_folders_are_named_errors(tiny_folder, tmp_path):
    path, _ = tiny_folder
    with pytest.raises(ReleasedCheckpointError, match=r"unnorm_key 'nope'.*available: \['bridge_orig/1.0.0', "
                                                      r"'fractal20220817_data/0.1.0'\]"):
        load_released(path, "cpu", {"unnorm_key": "nope"})
    with pytest.raises(ReleasedCheckpointError, match="set policy.load_options.unnorm_key; available"):
        load_released(path, "cpu", {})
    with pytest.raises(ReleasedCheckpointError, match="unknown \\['unorm_key'\\]"):
        load_released(path, "cpu", {"unorm_key": "x"})

    other = _copy(path, tmp_path / "paligemma")
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "model_type": "paligemma"}))
    assert released_loader(other) is None
    with pytest.raises(ReleasedCheckpointError, match="model_type 'paligemma', expected 'spatialvla'"):
        load_released(other, "cpu", {})

    nostats = _copy(path, tmp_path / "nostats")
    proc = json.loads((nostats / "processor_config.json").read_text())
    proc.pop("statistics")
    (nostats / "processor_config.json").write_text(json.dumps(proc))
    with pytest.raises(ReleasedCheckpointError, match="has no 'statistics'"):
        load_released(nostats, "cpu", {})

    truncated = _copy(path, tmp_path / "truncated")
    shard = truncated / "model-00002-of-00003.safetensors"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ReleasedCheckpointError, match="model-00002-of-00003.safetensors: truncated"):
        load_released(truncated, "cpu", {"unnorm_key": "bridge_orig/1.0.0"})

    renamed = _copy(path, tmp_path / "renamed")
    shard = renamed / "model-00001-of-00003.safetensors"
    index = json.loads((renamed / "model.safetensors.index.json").read_text())
    tensors = load_file(str(shard))
    key = "spatial_embed_tokens.weight" if "spatial_embed_tokens.weight" in tensors else sorted(tensors)[0]
    tensors["spatial_embed_tokens.wieght"] = tensors.pop(key)
    save_file(tensors, str(shard))
    index["weight_map"]["spatial_embed_tokens.wieght"] = index["weight_map"].pop(key)
    (renamed / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ReleasedCheckpointError, match=rf"1 missing \['{key}'\], 1 unexpected "
                                                      r"\['spatial_embed_tokens.wieght'\]"):
        load_released(renamed, "cpu", {"unnorm_key": "bridge_orig/1.0.0"})


# --- paper scale, on the meta device ------------------------------------------------------------------------------
RELEASED_VISION = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                       vision_use_head=False,
                       patch_size=14, image_size=224)
RELEASED_TEXT = dict(hidden_size=2304, intermediate_size=9216, num_hidden_layers=26, num_attention_heads=8,
                     num_key_value_heads=4, head_dim=256, vocab_size=265347, tie_word_embeddings=False)
RELEASED_ZOE = dict(bin_configurations=[{"n_bins": 64, "min_depth": 0.001, "max_depth": 10.0, "name": "nyu"},
                                        {"n_bins": 64, "min_depth": 0.001, "max_depth": 80.0, "name": "kitti"}],
                    num_patch_transformer_layers=4, patch_transformer_hidden_size=128,
                    patch_transformer_intermediate_size=1024, patch_transformer_num_attention_heads=4)


def _released_keys(prefix, model):
    """transformers' own class, keys renamed back by transformers' own (reversed) load-time renamings."""
    rev = [t.reverse_transform() for t in get_model_conversion_mapping(model, add_legacy=False)[::-1]]
    out = {}
    for k, v in model.state_dict().items():
        for t in rev:
            k, _ = t.rename_source_key(k)
        out[f"{prefix}.{k}"] = tuple(v.shape)
    return out


def test_paper_scale_keys_and_shapes_are_the_released_models(tmp_path):
    with torch.device("meta"):
        expected = _released_keys("vision_tower", SiglipVisionModel(SiglipVisionConfig(**RELEASED_VISION)))
        expected |= _released_keys("language_model", Gemma2ForCausalLM(Gemma2Config(**RELEASED_TEXT)))
        expected |= _released_keys("vision_zoe_model", ZoeDepthForDepthEstimation(ZoeDepthConfig(**RELEASED_ZOE)))
    # the reference's own modules (model/modeling_spatialvla.py): projector, Ego3D MLP, spatial token embeddings
    expected |= {"multi_modal_projector.linear.weight": (2304, 1152), "multi_modal_projector.linear.bias": (2304,),
                 "position_embedding_3d.position_embedding_head.0.weight": (1152, 12 * 17),
                 "position_embedding_3d.position_embedding_head.0.bias": (1152,),
                 "position_embedding_3d.position_embedding_head.1.weight": (1152,),
                 "position_embedding_3d.position_embedding_head.1.bias": (1152,),
                 "position_embedding_3d.position_embedding_head.3.weight": (1152, 1152),
                 "position_embedding_3d.position_embedding_head.3.bias": (1152,),
                 "spatial_embed_tokens.weight": (8194, 2304)}
    assert "vision_tower.vision_model.encoder.layers.26.mlp.fc2.weight" in expected
    assert expected["language_model.lm_head.weight"] == (265347, 2304)
    from vla_ros.policies.spatialvla.configuration_spatialvla import paper_model_config
    from vla_ros.policies.spatialvla.layout_spatialvla import released_names

    cfg = PolicyConfig(method="spatialvla", image_size=224, method_args={"model": paper_model_config()})
    model = build_empty(cfg, "meta")
    names = released_names(model)
    got = {names[k]: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(got) - set(expected)) == [] and sorted(set(expected) - set(got)) == []
    assert got == expected
    # Written out by hand as transformers 4.47 (which saved the release) names them, so that a wrong renaming in
    # layout_spatialvla (which the expected set above shares through transformers' conversion mapping) fails here.
    pinned = {"vision_tower.vision_model.embeddings.patch_embedding.weight": (1152, 3, 14, 14),
              "vision_tower.vision_model.embeddings.position_embedding.weight": (256, 1152),
              "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight": (1152, 1152),
              "vision_tower.vision_model.post_layernorm.weight": (1152,),
              "language_model.model.embed_tokens.weight": (265347, 2304),
              "language_model.model.layers.0.self_attn.q_proj.weight": (2048, 2304),
              "language_model.model.layers.0.self_attn.k_proj.weight": (1024, 2304),
              "language_model.model.layers.25.post_feedforward_layernorm.weight": (2304,),
              "language_model.model.norm.weight": (2304,),
              "vision_zoe_model.backbone.encoder.layer.0.attention.attention.query.weight": (1024, 1024)}
    assert {k: got.get(k) for k in pinned} == pinned
    n = sum(int(np.prod(s)) for s in got.values())
    assert n == sum(int(np.prod(s)) for s in expected.values()) and 3.9e9 < n < 4.2e9, n
    assert len(got) == len(expected)


# --- cards and inspect -----------------------------------------------------------------------------------------------
def test_cards_ship_for_the_three_released_checkpoints_and_match_by_folder_name(tmp_path):
    assert available_cards("spatialvla") == ["spatialvla-4b-224-pt", "spatialvla-4b-mix-224-sft-bridge",
                                             "spatialvla-4b-mix-224-sft-fractal"]
    bridge = load_card("spatialvla", "spatialvla-4b-mix-224-sft-bridge")
    assert bridge.data["dataset_key"] == "bridge_orig/1.0.0"
    assert bridge.data["robot_config"].endswith("widowx_spatialvla.yaml")
    fractal = load_card("spatialvla", "spatialvla-4b-mix-224-sft-fractal")
    assert fractal.data["dataset_key"] == "fractal20220817_data/0.1.0"
    assert match_card("spatialvla", tmp_path / "spatialvla-4b-224-pt").name == "spatialvla-4b-224-pt"
    assert match_card("spatialvla", tmp_path / "elsewhere") is None


def _cli(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "vla_ros.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_checkpoint_inspect_prints_method_params_coverage_norm_keys_and_card(tiny_folder):
    path, policy = tiny_folder
    out = _cli("checkpoint", "inspect", str(path), "--card", "spatialvla-4b-mix-224-sft-bridge")
    assert out.returncode == 0, out.stderr
    n = sum(v.numel() for v in policy.state_dict().values())
    assert "method: spatialvla (released layout)" in out.stdout and f"parameters: {n:,}" in out.stdout
    assert "key coverage: 358/358 expected keys (100.0 %), 0 unexpected, 0 shape mismatches" in out.stdout
    assert "norm keys: bridge_orig/1.0.0, fractal20220817_data/0.1.0" in out.stdout
    assert "card: spatialvla-4b-mix-224-sft-bridge" in out.stdout and "dataset_key: bridge_orig/1.0.0" in out.stdout
    bundled = Path(__file__).resolve().parents[1] / "vla_ros" / "checkpoints" / "sim_spatialvla"
    out = _cli("checkpoint", "inspect", str(bundled))
    assert out.returncode == 0, out.stderr
    assert "method: spatialvla (vla_ros layout)" in out.stdout and "(100.0 %)" in out.stdout
    assert "norm keys: sim" in out.stdout  # the statistics fitted to the simulator's demonstrations
    out = _cli("checkpoint", "inspect", str(path / "nope"))
    assert out.returncode == 1 and "no such checkpoint" in out.stderr and "Traceback" not in out.stderr


def test_bin_edges_come_from_bin_policy_else_gaussians_else_uniform(tiny_folder, tmp_path):
    from vla_ros.policies.spatialvla.configuration_spatialvla import uniform_bin_policy
    from vla_ros.policies.spatialvla.processing_spatialvla import gaussian_bin_policy

    path, policy = tiny_folder
    gauss = _copy(path, tmp_path / "gauss")
    proc = json.loads((gauss / "processor_config.json").read_text())
    assert proc["bin_policy"] == policy.args.bin_policy
    gs = {k: {"mu": 0.2, "sigma": 0.1} for k in ("theta", "phi", "r", "roll", "pitch", "yaw")}
    proc.pop("bin_policy")
    (gauss / "processor_config.json").write_text(json.dumps({**proc, "gs_params": gs, "min_sigma": 0.3}))
    loaded = load_released(gauss, "cpu", {"unnorm_key": "bridge_orig/1.0.0"})
    num_bins = proc["action_config"]["num_bins"]
    assert loaded.args.bin_policy == gaussian_bin_policy(gs, num_bins, 0.3) != uniform_bin_policy(num_bins)
    proc_plain = {k: v for k, v in proc.items() if k != "gs_params"}
    (gauss / "processor_config.json").write_text(json.dumps(proc_plain))
    assert load_released(gauss, "cpu", {"unnorm_key": "bridge_orig/1.0.0"}).args.bin_policy == \
        uniform_bin_policy(num_bins)
