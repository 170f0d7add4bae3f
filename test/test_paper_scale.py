"""Paper-scale configs: a PaliGemma-class VLM from a local folder and the 1B ESM, built on the meta device
to count parameters; a small PaliGemma saved to a local folder runs every method through the same code."""
import pytest
import torch

from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats


def test_paligemma_3b_and_vggt_1b_param_counts_on_meta(tmp_path):
    from transformers import PaliGemmaConfig

    from vla_ros.policies.backbones.hf_vlm import load_hf_vlm

    PaliGemmaConfig().save_pretrained(tmp_path)  # config only: no weights in the folder
    with torch.device("meta"):
        model, _ = load_hf_vlm(tmp_path)
        esm = EmbodiedSpatialModel(ESMConfig.vggt_1b())
    n_vlm = sum(p.numel() for p in model.parameters())
    n_esm = sum(p.numel() for p in esm.aggregator.parameters())
    assert 2.85e9 < n_vlm < 2.95e9, n_vlm  # PaliGemma-3B: SigLIP-So400m + Gemma-2B
    assert 0.905e9 < n_esm < 0.915e9, n_esm  # VGGT-1B aggregator (+ FALCON's depth/pose inputs)


@pytest.fixture(scope="module")
def small_paligemma(tmp_path_factory):
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

    path = tmp_path_factory.mktemp("paligemma_small")
    cfg = PaliGemmaConfig(vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=2, image_size=32, patch_size=8),
                          text_config=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                                           num_attention_heads=2, num_key_value_heads=1, head_dim=24,
                                           vocab_size=300), projection_dim=48, image_token_index=299)
    torch.manual_seed(0)
    PaliGemmaForConditionalGeneration(cfg).save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("method", ["baseline", "falcon", "spatial_forcing", "spatialvla_legacy"])
def test_methods_run_on_a_local_paligemma(method, small_paligemma):
    cfg = tiny_config(method, vlm={"kind": "hf", "path": small_paligemma, "depth": 3, "heads": 2, "width": 48,
                                   "patch_size": 8})
    policy = make_policy(cfg, synthetic_norm_stats(cfg))
    assert policy.vlm.model.config.model_type == "paligemma"
    batch = synthetic_batch(cfg, 2, seed=0)
    loss, metrics = policy.compute_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    with torch.no_grad():
        actions = policy.predict_actions(batch, ("rgb", "depth", "pose"))
    assert actions.shape == (2, cfg.horizon, 1, 7)


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="vlm.path"):
        make_policy(tiny_config("baseline", vlm={"kind": "hf", "path": str(tmp_path / "none")}))
