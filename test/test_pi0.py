"""π0: the flow-matching model learns, the KV-cache inference equals the joint forward, checkpoints round-trip,
and openpi's PyTorch layout (written here from transformers' own classes and the reference's module names) loads
key for key, at tiny width through the real loader and at paper scale on the meta device."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import GemmaConfig, GemmaForCausalLM, PaliGemmaConfig, PaliGemmaForConditionalGeneration

from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.checkpoint_io import load_policy, save_checkpoint
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.pi0.configuration_pi0 import GEMMA_VARIANTS
from vla_ros.policies.pi0.loading_pi0 import Pi0CheckpointError, is_released, released_layout
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats

VOCAB = 257152  # PaliGemma's


def build(seed=0, **method_args):
    torch.manual_seed(seed)
    cfg = tiny_config("pi0")
    cfg.method_args.update(method_args)
    cfg = tiny_config("pi0", method_args=cfg.method_args)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def fixed(batch, policy, seed=1):
    g = torch.Generator().manual_seed(seed)
    B = batch["action"].shape[0]
    return {**batch, "noise": torch.randn(B, policy.config.horizon, policy.args.action_dim, generator=g),
            "time": torch.rand(B, generator=g) * 0.999 + 0.001}


def test_tiny_pi0_overfits_a_few_batches_and_its_flow_matching_loss_falls():
    policy = build()
    batches = [synthetic_batch(policy.config, 4, seed=s) for s in (0, 1)]
    probe = [fixed(b, policy, 7 + i) for i, b in enumerate(batches)]

    def probe_loss():
        policy.eval()
        with torch.no_grad():
            return float(np.mean([policy.compute_loss(b)[0] for b in probe]))
    before = probe_loss()
    opt = torch.optim.AdamW(policy.parameters(), lr=2e-3)
    policy.train()
    for step in range(150):
        loss, metrics = policy.compute_loss(batches[step % 2])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = probe_loss()
    assert after < 0.4 * before, (before, after)


def test_kv_cache_denoising_step_equals_the_joint_training_forward():
    """One Euler step from t=1 with the prefix KV cache == noise - v(noise, t=1) from the joint forward."""
    policy = build(num_steps=1).eval()
    batch = synthetic_batch(policy.config, 2, seed=3)
    noise = torch.randn(2, policy.config.horizon, policy.args.action_dim)
    sampled = policy.sample_actions(batch, noise)
    with torch.no_grad():
        feats = policy.encode({**batch, "noise": noise, "time": torch.ones(2)}, ())
    torch.testing.assert_close(sampled, noise - feats["v_t"], rtol=1e-4, atol=1e-5)


def test_ten_euler_steps_from_t1_to_t0():
    policy = build().eval()
    assert policy.args.num_steps == 10
    calls = []
    orig = policy.embed_suffix
    policy.embed_suffix = lambda s, x, t: (calls.append(float(t[0])), orig(s, x, t))[1]
    policy.sample_actions(synthetic_batch(policy.config, 1, seed=0))
    np.testing.assert_allclose(calls, np.linspace(1.0, 0.1, 10), atol=1e-6)


def observation(seed=0):
    rng = np.random.default_rng(seed)
    cam = CameraObservation(name="front", rgb=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                            K=np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]), stamp_s=1.0)
    return Observation(stamp_s=1.0, cameras=[cam], proprio=np.zeros(8, np.float32), instruction="reach the block")


def test_save_load_infer_identical(tmp_path):
    policy = build()
    save_checkpoint(policy, tmp_path / "ck")
    loaded = load_policy(tmp_path / "ck")
    obs = observation()
    torch.manual_seed(5)
    a = policy.infer(obs)
    torch.manual_seed(5)
    b = loaded.infer(obs)
    np.testing.assert_array_equal(a.position_m, b.position_m)
    np.testing.assert_array_equal(a.gripper, b.gripper)
    assert a.position_m.shape == (policy.config.horizon, 1, 3)


# --- openpi's layout, derived from transformers' classes + openpi's module names ----------------------------------
def openpi_paligemma_config(text: dict, vision: dict, vocab: int) -> PaliGemmaConfig:
    """openpi `PaliGemmaWithExpertModel.__init__`: a default PaliGemma config with these text and vision widths."""
    cfg = PaliGemmaConfig(text_config={"model_type": "gemma", "vocab_size": vocab, "hidden_size": text["width"],
                                       "intermediate_size": text["mlp_dim"], "num_attention_heads": text["num_heads"],
                                       "head_dim": text["head_dim"], "num_hidden_layers": text["depth"],
                                       "num_key_value_heads": text["num_kv_heads"]},
                          vision_config={"model_type": "siglip_vision_model", **vision, "vision_use_head": False,
                                         "projection_dim": text["width"]},
                          projection_dim=text["width"])
    return cfg


def openpi_module(text: dict, expert: dict, vision: dict, vocab: int, action_dim: int) -> nn.Module:
    """openpi `PI0Pytorch` (π0, not π0.5) as its converter saves it, from transformers' classes."""
    root, pwe = nn.Module(), nn.Module()
    pwe.paligemma = PaliGemmaForConditionalGeneration(openpi_paligemma_config(text, vision, vocab))
    pwe.gemma_expert = GemmaForCausalLM(GemmaConfig(
        head_dim=expert["head_dim"], hidden_size=expert["width"], intermediate_size=expert["mlp_dim"],
        num_attention_heads=expert["num_heads"], num_hidden_layers=expert["depth"],
        num_key_value_heads=expert["num_kv_heads"], vocab_size=vocab))
    pwe.gemma_expert.model.embed_tokens = None
    root.paligemma_with_expert = pwe
    w = expert["width"]
    root.action_in_proj = nn.Linear(action_dim, w)
    root.action_out_proj = nn.Linear(w, action_dim)
    root.state_proj = nn.Linear(action_dim, w)
    root.action_time_mlp_in = nn.Linear(2 * w, w)
    root.action_time_mlp_out = nn.Linear(w, w)
    return root


def saved_layout(module: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors `safetensors.torch.save_model` writes: of parameters shared under several names (tied
    weights) only the alphabetically first name; openpi's transformers 4.53 nests SigLIP as `vision_model.*`,
    which transformers >= 5 dropped, so that level is put back."""
    groups = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append(name)
    out = {}
    for names in groups.values():
        name = sorted(names)[0]
        out[name.replace("paligemma.model.vision_tower.", "paligemma.model.vision_tower.vision_model.")] = \
            dict(module.named_parameters(remove_duplicate=False))[name]
    return out


def widths(variant):
    return dict(zip(("width", "depth", "mlp_dim", "num_heads", "num_kv_heads", "head_dim"), GEMMA_VARIANTS[variant]))


def test_paper_scale_keys_and_shapes_equal_the_openpi_pi0_base_checkpoint():
    vision = {"hidden_size": 1152, "num_hidden_layers": 27, "num_attention_heads": 16, "intermediate_size": 4304,
              "patch_size": 14, "image_size": 224}
    with torch.device("meta"):
        ref = openpi_module(widths("gemma_2b"), widths("gemma_300m"), vision, VOCAB, 32)
        expected = {k: tuple(v.shape) for k, v in saved_layout(ref).items()}
        cfg = tiny_config("pi0", image_size=224, method_args={"tokenizer": "bytes"})  # paper widths by default
        ours = released_layout(make_policy(cfg, None, external_weights=False))
    assert "paligemma_with_expert.paligemma.lm_head.weight" in expected  # the tied embedding's saved name
    assert "paligemma_with_expert.gemma_expert.lm_head.weight" in expected
    assert not [k for k in set(expected) ^ set(ours)], sorted(set(expected) ^ set(ours))[:10]
    wrong = [k for k in expected if expected[k] != ours[k]]
    assert not wrong, wrong[:10]
    assert expected["paligemma_with_expert.paligemma.model.vision_tower.vision_model.embeddings.position_embedding"
                    ".weight"] == (256, 1152)
    assert expected["action_time_mlp_in.weight"] == (1024, 2048)
    # SigLIP 27 x 16 + 5, projector 2, each Gemma 18 x 9 + norm + lm_head, 5 Linear x 2
    assert len(expected) == len(ours) == 27 * 16 + 5 + 2 + 2 * (18 * 9 + 2) + 10


TINY_VISION = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
               "patch_size": 16}


def write_openpi_folder(d, vocab=300, action_dim=32, seed=0):
    """A tiny-width π0 in openpi's PyTorch layout: model.safetensors + config.json + assets norm stats."""
    torch.manual_seed(seed)
    ref = openpi_module(widths("dummy"), widths("dummy"), {**TINY_VISION, "image_size": 32}, vocab, action_dim)
    tensors = {k: v.detach().clone().contiguous() for k, v in saved_layout(ref).items()}
    d.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"action_dim": action_dim, "action_horizon": 50,
                                               "paligemma_variant": "dummy", "action_expert_variant": "dummy",
                                               "precision": "float32"}))
    (d / "assets" / "my_robot").mkdir(parents=True)
    stats = {k: {"mean": [0.1] * 9, "std": [2.0] * 9, "q01": [-1.0] * 9, "q99": [1.0] * 9}
             for k in ("state", "actions")}
    (d / "assets" / "my_robot" / "norm_stats.json").write_text(json.dumps({"norm_stats": stats}))
    return tensors


OPTIONS = {"camera_names": ["front"], "proprio_dim": 8, "horizon": 4, "image_size": 32,
           "method_args": {"vision": TINY_VISION, "vocab_size": 300, "tokenizer": "bytes", "max_token_len": 16}}


def test_tiny_openpi_folder_loads_key_for_key_through_the_real_loader(tmp_path):
    tensors = write_openpi_folder(tmp_path / "pi0")
    assert is_released(tmp_path / "pi0")
    policy = load_policy(tmp_path / "pi0", "cpu", OPTIONS)
    own = policy.state_dict()
    for k, v in tensors.items():
        if k == "paligemma_with_expert.paligemma.lm_head.weight":
            k = "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
        if k != "paligemma_with_expert.gemma_expert.lm_head.weight":
            torch.testing.assert_close(own[k], v, rtol=0, atol=0)
    assert policy.norm_stats.stats["action"].dim == 7 and policy.norm_stats.mode == "mean_std"
    # openpi's z-score on every dim (mean 0.1, std 2 in the file), zero-padded to action_dim 32
    state = policy._state({"proprio": torch.zeros(1, 8)})
    torch.testing.assert_close(state, torch.cat([torch.full((1, 8), -0.1 / (2 + 1e-6)), torch.zeros(1, 24)], 1))
    raw = policy.unnormalize_actions(torch.ones(1, 4, 32))
    torch.testing.assert_close(raw[..., :6], torch.full((1, 4, 1, 6), 2.1 + 1e-6))
    assert float(raw[..., 6].max()) == 1.0  # the gripper clamped to [0, 1]
    chunk = policy.infer(observation())
    assert chunk.position_m.shape == (4, 1, 3) and np.isfinite(chunk.position_m).all()


def test_a_missing_or_misshaped_key_is_named(tmp_path):
    tensors = write_openpi_folder(tmp_path / "pi0")
    del tensors["state_proj.bias"]
    tensors["action_out_proj.weight"] = torch.zeros(5, 64)
    save_file(tensors, str(tmp_path / "pi0" / "model.safetensors"))
    with pytest.raises(Pi0CheckpointError, match="state_proj.bias.*action_out_proj.weight"):
        load_policy(tmp_path / "pi0", "cpu", OPTIONS)


def test_base_weights_start_training_and_wrong_widths_are_named(tmp_path):
    tensors = write_openpi_folder(tmp_path / "pi0")
    args = {**OPTIONS["method_args"], "paligemma": widths("dummy"), "action_expert": widths("dummy"),
            "base_weights": str(tmp_path / "pi0")}
    cfg = tiny_config("pi0", image_size=32, method_args=args)
    policy = make_policy(cfg, synthetic_norm_stats(cfg))
    torch.testing.assert_close(policy.state_proj.weight, tensors["state_proj.weight"], rtol=0, atol=0)
    cfg = tiny_config("pi0", image_size=32, method_args={**args, "action_dim": 16})
    with pytest.raises(Pi0CheckpointError, match="action_dim"):
        make_policy(cfg, None)


def test_several_norm_stats_need_an_asset_id(tmp_path):
    write_openpi_folder(tmp_path / "pi0")
    other = tmp_path / "pi0" / "assets" / "other"
    other.mkdir()
    (other / "norm_stats.json").write_text((tmp_path / "pi0/assets/my_robot/norm_stats.json").read_text())
    with pytest.raises(Pi0CheckpointError, match="asset_id"):
        load_policy(tmp_path / "pi0", "cpu", OPTIONS)
    assert load_policy(tmp_path / "pi0", "cpu", {**OPTIONS, "asset_id": "other"}) is not None


def test_lora_adapts_both_stacks_with_openpi_ranks_and_freezes_their_weights(tmp_path):
    pytest.importorskip("peft")
    policy = build(lora={"enabled": True})
    names = {n: p for n, p in policy.named_parameters()}
    a_pg = names["paligemma_with_expert.paligemma.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight"]
    a_ex = names["paligemma_with_expert.gemma_expert.model.layers.1.mlp.down_proj.lora_A.default.weight"]
    assert a_pg.shape[0] == 16 and a_ex.shape[0] == 32  # gemma_2b_lora rank 16, gemma_300m_lora rank 32
    lora = [n for n in names if "lora_" in n]
    assert len(lora) == 2 * 2 * 2 * 7  # 2 stacks x 2 layers x (A, B) x 7 projections
    frozen = {n for n, p in names.items() if not p.requires_grad}
    assert "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight" in frozen
    assert "paligemma_with_expert.gemma_expert.model.layers.0.self_attn.q_proj.base_layer.weight" in frozen
    assert not any("vision_tower" in n or "lora_" in n or n.startswith("state_proj") for n in frozen)
    before = {n: p.detach().clone() for n, p in names.items()}
    batch = synthetic_batch(policy.config, 2, seed=0)
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = policy.compute_loss(batch)
    loss.backward()
    opt.step()
    assert all(torch.equal(before[n], names[n]) for n in frozen)
    assert not torch.equal(before[lora[0]], names[lora[0]])
    save_checkpoint(policy, tmp_path / "ck")
    loaded = load_policy(tmp_path / "ck")
    torch.testing.assert_close(loaded.state_dict()[lora[0]], names[lora[0]].detach())


def test_vla_ros_train_fine_tunes_pi0_from_base_weights_with_spatial_forcing(tmp_path):
    import subprocess
    import sys

    import yaml

    tensors = write_openpi_folder(tmp_path / "base")
    args = {**OPTIONS["method_args"], "paligemma": widths("dummy"), "action_expert": widths("dummy"),
            "base_weights": str(tmp_path / "base"),
            "spatial_forcing": {"enabled": True, "align_layer": 2, "teacher": {
                "embed_dim": 32, "heads": 2, "depth": 1, "patch_size": 16, "img_size": 32, "dino_depth": 1,
                "depth_input": False, "pose_input": False}}}
    cfg = {"policy": {"method": "pi0", "image_size": 32, "horizon": 4, "method_args": args},
           "out": str(tmp_path / "run"), "steps": 3, "batch_size": 2, "eval_every": 3, "ckpt_every": 3}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "vla_ros.cli", "train", "--config", str(tmp_path / "train.yaml"),
                          "--no-progress"], capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["step"] == 3 and "align_loss" in last and np.isfinite(last["val_loss"])
    policy = load_policy(tmp_path / "run" / "checkpoint")
    assert policy.args.spatial_forcing.enabled and not policy._teacher
    moved = policy.state_dict()["state_proj.weight"]
    assert moved.shape == tensors["state_proj.weight"].shape and not torch.equal(moved, tensors["state_proj.weight"])


def test_layer_loop_on_one_stack_equals_transformers_gemma_model():
    """The shared-attention loop, run on the prefix stack alone with a causal mask, is transformers' Gemma."""
    from vla_ros.policies.pi0.processing_pi0 import make_att_2d_masks

    policy = build().eval()
    pwe = policy.paligemma_with_expert
    x = torch.randn(2, 7, policy.args.paligemma.width)
    pad = torch.ones(2, 7, dtype=torch.bool)
    mask = make_att_2d_masks(pad, torch.ones(2, 7, dtype=torch.bool))
    pos = torch.arange(7)[None].expand(2, -1)
    with torch.no_grad():
        (ours, _), _, _ = pwe([x, None], mask, pos)
        theirs = pwe.language_model(inputs_embeds=x, position_ids=pos).last_hidden_state
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_two_stacks_with_equal_weights_equal_one_stack_over_the_joined_sequence():
    """Expert = a copy of the prefix Gemma: the joint pass over [prefix, suffix] is one Gemma over the concat."""
    from vla_ros.policies.pi0.processing_pi0 import make_att_2d_masks

    same = {"width": 64, "mlp_dim": 128, "depth": 2, "num_heads": 2, "num_kv_heads": 1, "head_dim": 16}
    policy = build(action_expert=same).eval()
    pwe = policy.paligemma_with_expert
    own = pwe.language_model.state_dict()
    pwe.gemma_expert.model.load_state_dict({k: v for k, v in own.items() if not k.startswith("embed_tokens")})
    pre, suf = torch.randn(1, 5, 64), torch.randn(1, 3, 64)
    pad = torch.ones(1, 8, dtype=torch.bool)
    ar = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 0]], dtype=torch.bool)  # π0's prefix-LM blocks
    mask = make_att_2d_masks(pad, ar)
    pos = torch.arange(8)[None]
    with torch.no_grad():
        (p_out, s_out), _, _ = pwe([pre, suf], mask, pos)
        (joined, _), _, _ = pwe([torch.cat([pre, suf], 1), None], mask, pos)
    torch.testing.assert_close(torch.cat([p_out, s_out], 1), joined, rtol=1e-5, atol=1e-6)


def test_bfloat16_keeps_openpis_float32_parameters_and_runs():
    policy = build(dtype="bfloat16")
    dtypes = {n: p.dtype for n, p in policy.paligemma_with_expert.named_parameters()}
    f32 = sorted(n for n, d in dtypes.items() if d == torch.float32)
    assert all(any(s in n for s in ("patch_embedding", "position_embedding", "layernorm", "model.norm"))
               for n in f32) and f32
    assert dtypes["paligemma.model.language_model.layers.0.self_attn.q_proj.weight"] == torch.bfloat16
    assert dtypes["paligemma.model.language_model.layers.0.input_layernorm.weight"] == torch.float32
    batch = synthetic_batch(policy.config, 2, seed=0)
    loss, _ = policy.compute_loss(batch)
    assert torch.isfinite(loss)
    assert policy.eval().sample_actions(batch).dtype == torch.float32


def test_prompt_tokens_follow_openpis_paligemma_tokenizer(tmp_path):
    """BOS + cleaned text + the newline's tokens, 0-padded to max_len with a mask, cut at max_len; read from a
    sentencepiece model file (a small one trained here with PaliGemma's special ids: pad 0, eos 1, bos 2)."""
    import io

    spm = pytest.importorskip("sentencepiece")
    from vla_ros.policies.pi0.processing_pi0 import PromptTokenizer

    buf = io.BytesIO()
    text = ["pick up the red cube", "put the cube in the bowl", "open the drawer", "close the drawer"] * 20
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=buf, vocab_size=24, pad_id=0,
                                   eos_id=1, bos_id=2, unk_id=3, user_defined_symbols=["\n"])
    (tmp_path / "paligemma_tokenizer.model").write_bytes(buf.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    tok = PromptTokenizer("sentencepiece", str(tmp_path), 48)
    ids, mask = tok([" pick_up the\ncube "])
    want = sp.encode("pick up the cube", add_bos=True) + sp.encode("\n")
    assert want[0] == 2 and len(want) < 48
    assert ids[0].tolist() == want + [0] * (48 - len(want))
    assert mask[0].tolist() == [True] * len(want) + [False] * (48 - len(want))
    ids, mask = PromptTokenizer("sentencepiece", str(tmp_path / "paligemma_tokenizer.model"), 3)(["open the drawer"])
    assert ids[0].tolist() == want[:1] + sp.encode("open the drawer")[:2] and bool(mask.all())
    with pytest.raises(ValueError, match="tokenizer_path"):
        PromptTokenizer("sentencepiece", str(tmp_path / "absent"), 16)


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_pi0_with_lora_and_spatial_forcing(tmp_path):
    import os
    import subprocess
    import sys

    import yaml

    cfg = tiny_config("pi0")
    args = dict(cfg.method_args, lora={"enabled": True}, spatial_forcing={**cfg.method_args["spatial_forcing"],
                                                                         "enabled": True})
    run = {"policy": {"method": "pi0", "horizon": 4, "method_args": args}, "out": str(tmp_path / "run"),
           "steps": 2, "batch_size": 2, "eval_every": 2, "ckpt_every": 2}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(run))
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "vla_ros.cli", "train", "--config", str(tmp_path / "t.yaml"), "--no-progress"],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"),
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["step"] == 2
    assert load_policy(tmp_path / "run" / "checkpoint").args.lora.enabled
