"""FALCON's reference architecture trained here at tiny width: Kosmos-2 from an inline config with the byte
tokenizer (checkpoints that need no other file), both stages of the reference recipe through the real train loop,
an ESM folder of another input convention refused, windows of consecutive frames for the LSTM head, and every
per-camera input cut to the same camera."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vla_ros.core.config import ConfigError
from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.checkpoint_io import load_policy
from vla_ros.policies.factory import make_policy
from vla_ros.policies.falcon.kosmos_falcon import byte_tokenizer
from vla_ros.training.synthetic import synthetic_batch
from vla_ros.training.trainer import TrainConfig, train

INLINE = {"text_config": {"embed_dim": 32, "layers": 1, "attention_heads": 2, "ffn_dim": 64, "vocab_size": 261},
          "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                            "num_attention_heads": 2},
          "latent_query_num": 4}
ESM = {"embed_dim": 32, "heads": 2, "depth": 2, "patch_size": 8, "img_size": 32, "dino_depth": 1, "camera_head": True,
       "depth_head": True, "pose_frame": "base", "dpt_features": 8, "dpt_out_channels": [8, 8, 16, 16],
       "head_heads": 2}
COMMON = {"steps": 2, "batch_size": 2, "eval_every": 2, "ckpt_every": 2, "val_batches": 1, "resume": False}


def policy_cfg(modalities="rgb", esm_checkpoint="", **ref) -> dict:
    reference = {"kosmos2": INLINE, "tokenizer": "bytes", "hidden_size": 16, "mlp_widths": [16, 8, 8],
                 "injector_widths": [8, 16], "rotation": "rotvec", "action_norm": "clip", "norm_bounds": [-1.5, 1.5],
                 "accumulate_deltas": False, "preprocess": "vla_ros", **ref}
    return {"method": "falcon", "image_size": 32, "proprio_dim": 1, "horizon": 4, "modalities": modalities,
            "action_reference": "delta_measured", "vlm": {"kind": "tiny", "patch_size": 8},
            "method_args": {"architecture": "reference", "esm": ESM, "esm_checkpoint": esm_checkpoint,
                            "reference": reference}}


def esm_folder(path, convention="vggt"):
    from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig
    from vla_ros.training.esm_pretrain import save_esm

    torch.manual_seed(3)
    model = EmbodiedSpatialModel(ESMConfig(**ESM, input_convention=convention))
    return save_esm(model, path), {k: v.clone() for k, v in model.state_dict().items()}


def observation(seed=0):
    rng = np.random.default_rng(seed)
    K = np.array([[30.0, 0, 24], [0, 30.0, 18], [0, 0, 1]])
    cam = CameraObservation("front", rng.integers(0, 255, (36, 48, 3), dtype=np.uint8), K, 0.0,
                            depth_m=rng.uniform(0.5, 1.5, (36, 48)).astype(np.float32), T_base_camera=np.eye(4))
    return Observation(0.0, [cam], np.zeros(1, np.float32), "put the red block on the platform")


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


# --- Kosmos-2 built here ----------------------------------------------------------------------------------------
def test_byte_tokenizer_frames_a_prompt_with_kosmos2_special_ids():
    tok = byte_tokenizer()
    ids = tok(["<grounding>An a"])["input_ids"][0]
    # <s>, <grounding>, then bytes: 'A' (65) and 'n' (110) and 'a' (97) are ids 5 + (code - 33); space is GPT-2's 'Ġ'
    assert ids[:4] == [0, 4, 5 + 65 - 33, 5 + 110 - 33] and ids[-2:] == [5 + 97 - 33, 2] and len(tok) == 261
    assert tok.decode(tok("héllo")["input_ids"], skip_special_tokens=True) == "héllo"  # every byte round-trips


def test_inline_kosmos2_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="kosmos2: unknown \\['text'\\]"):
        make_policy(policy_cfg(use_esm=False, stage=1, kosmos2={**INLINE, "text": {}}))
    with pytest.raises(ConfigError, match="text_config: unknown \\['width'\\]"):
        make_policy(policy_cfg(use_esm=False, stage=1, kosmos2={**INLINE, "text_config": {"width": 8}}))
    with pytest.raises(ConfigError, match="vision_config.image_size: 64"):
        make_policy(policy_cfg(use_esm=False, stage=1, kosmos2={
            **INLINE, "vision_config": {**INLINE["vision_config"], "image_size": 64}}))
    with pytest.raises(ConfigError, match="261 ids"):
        make_policy(policy_cfg(use_esm=False, stage=1, kosmos2={
            **INLINE, "text_config": {**INLINE["text_config"], "vocab_size": 100}}))
    with pytest.raises(ConfigError, match="tokenizer"):
        make_policy(policy_cfg(use_esm=False, stage=1, tokenizer="folder"))
    with pytest.raises(ConfigError, match="vlm.kind"):
        make_policy({**policy_cfg(use_esm=False, stage=1), "vlm": {"kind": "hf", "path": "/x", "patch_size": 8}})


# --- the two stages through the train loop ---------------------------------------------------------------------
def test_both_stages_train_and_the_checkpoints_describe_themselves(tmp_path):
    esm, esm_state = esm_folder(tmp_path / "esm")
    stage1 = policy_cfg("rgb", use_esm=False, stage=1)
    train(TrainConfig(policy=stage1, out=str(tmp_path / "s1"), **COMMON), progress=False)
    s1_dir = tmp_path / "s1" / "checkpoint"
    assert sorted(p.name for p in s1_dir.iterdir()) == ["config.yaml", "model.safetensors", "norm_stats.json"]
    s1 = weights(s1_dir)
    assert not any("spatial_injector" in k or "vggt_net" in k for k in s1)

    stage2 = policy_cfg("rgbd_pose", str(esm), stage=2, init_from=str(s1_dir), esm_gt="random", camera_gt_pt=1.0,
                        depth_gt_pt=1.0)
    train(TrainConfig(policy=stage2, out=str(tmp_path / "s2"), **COMMON), progress=False)
    s2_dir = tmp_path / "s2" / "checkpoint"
    s2 = weights(s2_dir)
    for k, v in esm_state.items():  # the ESM frozen at the folder's values
        torch.testing.assert_close(s2["model.act_head.vggt_net." + k], v, rtol=0, atol=0)
    for k in ("model.act_head.mlp.0.weight", "model.act_head.actions.mlp.0.weight",
              "model.act_head.gripper.mlp.6.bias"):
        torch.testing.assert_close(s2[k], s1[k], rtol=0, atol=0)  # the head MLPs frozen
    assert not torch.equal(s2["model.backbone.text_model.model.layers.0.ffn.fc1.weight"],
                           s1["model.backbone.text_model.model.layers.0.ffn.fc1.weight"])  # Kosmos-2 trains
    assert s2["model.act_head.spatial_injector.proj1.0.weight"].abs().sum() > 0  # the injector trains from zero

    # the folder alone rebuilds the model (nothing else exists: Kosmos-2's config and tokenizer are in config.yaml)
    loaded = load_policy(s2_dir)
    assert type(loaded).__name__ == "FalconReferencePolicy"
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, s2[k], rtol=0, atol=0)
    full = loaded.infer(observation())
    assert full.position_m.shape == (4, 1, 3) and full.modalities == ("rgb", "depth", "pose")
    assert loaded.infer(observation(), ("rgb",)).modalities == ("rgb",)
    again = load_policy(s2_dir).infer(observation())
    np.testing.assert_array_equal(full.position_m, again.position_m)
    s1_policy = load_policy(s1_dir)
    assert s1_policy.INPUTS == ("rgb",) and s1_policy.infer(observation()).modalities == ("rgb",)


def test_an_esm_folder_of_another_input_convention_is_refused(tmp_path):
    legacy, _ = esm_folder(tmp_path / "legacy", "legacy")
    with pytest.raises(ConfigError, match="esm.input_convention is 'legacy' there, 'vggt' in this config"):
        make_policy(policy_cfg("rgbd_pose", str(legacy), stage=1))
    policy = make_policy(policy_cfg("rgbd_pose", str(esm_folder(tmp_path / "vggt")[0]), stage=1))
    assert policy.model.act_head.uses_esm


# --- windows of consecutive frames (LSTM) ------------------------------------------------------------------------
def write_dataset(root, lengths=(2, 5, 7, 2, 6)):
    from vla_ros.data.dataset import DatasetWriter

    w = DatasetWriter(root, ["front"], ["arm"], ["j1", "finger"], 0.1, (24, 32))
    rng = np.random.default_rng(0)
    for e, n in enumerate(lengths):
        t = np.arange(n, dtype=float)
        T = np.tile(np.eye(4), (n, 1, 1))
        T[:, :3, 3] = [0.5, 0.0, 0.6]
        quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1, 1))
        ee = np.concatenate([np.stack([0.4 + 0.01 * t, 0.02 * e + 0 * t, 0.2 + 0 * t], -1)[:, None], quat], -1)
        rgb = 10 * t[:, None, None, None] + rng.integers(0, 9, (n, 24, 32, 3))  # frame t: values 10 t + noise
        w.add_episode({"stamp_s": 0.1 * t, "rgb__front": rgb.astype(np.uint8),
                       "depth_m__front": rng.uniform(0.5, 1.0, (n, 24, 32)).astype(np.float32),
                       "K__front": np.tile([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]], (n, 1, 1)),
                       "T_base_camera__front": T, "proprio": rng.normal(size=(n, 2)).astype(np.float32),
                       "ee_pose": ee, "action_position_m": ee[:, :, :3] + 0.01, "action_quat_xyzw": quat,
                       "action_gripper": (t[:, None] > n / 2).astype(float)}, f"put block {e} on the platform")
    return w.close()


def test_a_window_holds_consecutive_frames_each_with_its_own_chunk(tmp_path):
    from vla_ros.data.torch_dataset import EpisodeDataset

    root = write_dataset(tmp_path / "ds")
    kw = {"val_fraction": 0.2, "seed": 0, "reference": "delta_measured", "ref_quat": (0.0, 0.0, 0.0, 1.0)}
    plain = EpisodeDataset(root, 4, 32, "train", **kw)
    win = EpisodeDataset(root, 4, 32, "train", window=3, **kw)
    lengths = [len(e["stamp_s"]) for e in plain.episodes]
    assert len(win) == sum(max(1, n - 2) for n in lengths)
    where = {pos: i for i, pos in enumerate(plain.index)}
    for i, (e, t) in enumerate(win.index):
        item, n = win[i], lengths[e]
        assert item["rgb"].shape == (3, 1, 3, 32, 32) and item["action"].shape == (3, 4, 1, 7)
        assert item["pose_valid"].shape == (3,) and isinstance(item["instruction"], str)
        for j in range(3):
            ref = plain[where[(e, min(t + j, n - 1))]]
            for k in ("rgb", "depth_m", "K", "T_base_camera", "action"):
                torch.testing.assert_close(item[k][j], ref[k], rtol=0, atol=0)
            if t + j >= n:  # a frame past a short episode: all padding
                assert item["action_pad"][j].all()
            else:
                assert torch.equal(item["action_pad"][j], ref["action_pad"])
    assert any(n < 3 for n in lengths), "the fixture should hold an episode shorter than the window"


def test_lstm_trains_over_windows_with_the_loss_on_every_frame(tmp_path):
    from vla_ros.data.torch_dataset import EpisodeDataset
    from vla_ros.training.trainer import collate

    root = write_dataset(tmp_path / "ds")
    cfg = {**policy_cfg("rgbd_pose", stage=1, head="lstm", window=3, lstm_layers=2, depth_gt_pt=1.0),
           "proprio_dim": 2}
    out = train(TrainConfig(policy=cfg, dataset=str(root), out=str(tmp_path / "run"), **COMMON), progress=False)
    assert np.isfinite(out["val_loss"])
    policy = load_policy(tmp_path / "run" / "checkpoint")  # eval: no dropout, the same draw twice
    win = EpisodeDataset(root, 4, 32, "train", 0.25, 0, reference="delta_measured", window=3)
    batch = collate([win[0], win[len(win) - 1]])
    policy.rng = np.random.default_rng(0)
    torch.manual_seed(0)
    loss, _ = policy.compute_loss(batch)
    from vla_ros.policies.falcon.processing_falcon import reference_frames

    policy.rng = np.random.default_rng(0)
    torch.manual_seed(0)
    arm, logit = policy.forward_head(reference_frames(batch), ("rgb", "depth", "pose"))
    assert arm.shape == (2, 3, 4, 6)  # the LSTM over the 3 frames, a chunk for each
    keep = ~batch["action_pad"]
    target = policy._normalize_arm(batch["action"][..., 0, :6])
    label = (batch["action"][..., 0, 6] > 0.5).float()
    expect = F.huber_loss(arm[keep], target[keep]) + 0.01 * F.binary_cross_entropy_with_logits(logit[keep], label[keep])
    torch.testing.assert_close(loss, expect)


# --- one camera, consistently ---------------------------------------------------------------------------------------
def test_every_per_camera_input_comes_from_the_same_camera():
    from vla_ros.core.config import from_dict
    from vla_ros.policies.config import PolicyConfig

    torch.manual_seed(0)
    policy = make_policy(policy_cfg("rgbd_pose", stage=1, depth_gt_pt=1.0, camera_gt_pt=1.0)).eval()
    torch.nn.init.normal_(policy.model.act_head.spatial_injector.proj1[0].weight, 0, 0.5)  # let the ESM count
    two = synthetic_batch(from_dict(PolicyConfig, {**policy_cfg(), "camera_names": ["front", "wrist"]}), 2, seed=1)
    two["rgb"][:, 1] = torch.rand_like(two["rgb"][:, 1])  # the second camera sees, measures and sits elsewhere
    two["depth_m"][:, 1] = 3.0 * torch.rand_like(two["depth_m"][:, 1])
    two["K"][:, 1, 0, 0] *= 2
    two["T_base_camera"][:, 1, :3, 3] = torch.tensor([0.3, -0.2, 0.9])
    cams = ("rgb", "depth_m", "depth_valid", "K", "T_base_camera")
    one = {k: (v[:, :1] if k in cams else v) for k, v in two.items()}
    with torch.no_grad():
        loss_two, loss_one = policy.compute_loss(two)[0], policy.compute_loss(one)[0]
        mixed = {**one, "depth_m": two["depth_m"][:, 1:]}  # camera 0's image with camera 1's depth
        loss_mixed = policy.compute_loss(mixed)[0]
    torch.testing.assert_close(loss_two, loss_one, rtol=0, atol=0)
    assert not torch.allclose(loss_mixed, loss_one)


# --- the ESM pretrained in the reference convention --------------------------------------------------------------
def test_an_esm_pretrained_in_the_reference_convention_feeds_the_reference_architecture(tmp_path):
    from vla_ros.policies.spatial_model.esm import ESMConfig, pose_encoding_vggt
    from vla_ros.training.esm_pretrain import ESMPretrainConfig, pretrain, pretrain_inputs

    batch = synthetic_batch(make_policy(policy_cfg("rgb", use_esm=False, stage=1)).config, 3, seed=2)
    batch["pose_valid"][2] = False
    on = torch.tensor([True, False, True])
    kw = pretrain_inputs(batch, on, on, ESMConfig(**ESM))
    assert torch.equal(kw["depth"], batch["depth_m"]) and torch.equal(kw["depth_on"], on)  # raw: the aggregator
    torch.testing.assert_close(kw["pose9"], pose_encoding_vggt(batch["T_base_camera"], batch["K"], (32, 32)))
    assert kw["pose_on"].tolist() == [[True], [False], [False]]  # asked for and valid

    root = write_dataset(tmp_path / "ds")
    cfg = ESMPretrainConfig(esm=ESMConfig(**ESM), dataset=str(root), out=str(tmp_path / "esm"), image_size=32,
                            steps=2, batch_size=4, eval_every=2)
    assert np.isfinite(pretrain(cfg, progress=False)["val_depth_mae_m"])
    policy = make_policy(policy_cfg("rgbd_pose", str(tmp_path / "esm"), stage=1))
    k = "aggregator.pose_embedding.weight"
    torch.testing.assert_close(policy.model.act_head.vggt_net.state_dict()[k], weights(tmp_path / "esm")[k])


# --- stage 0: grounded-text pretraining of the inline Kosmos-2 ---------------------------------------------------
def test_image_cells_of_known_points():
    from vla_ros.policies.falcon.grounding_falcon import image_cells

    K = torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]]).expand(3, 3, 3)
    T = torch.eye(4).expand(3, 4, 4)  # the optical frame is the base frame
    # on the optical axis -> the centre pixel (16, 16) -> cell 4 of 8; x 0.25 m at 1 m -> pixel 24 -> cell 6; behind
    pts = torch.tensor([[0.0, 0.0, 1.0], [0.25, -0.25, 1.0], [0.0, 0.0, -1.0]])
    cells, in_front = image_cells(pts, K, T, 32, 8)
    assert cells[:2].tolist() == [[4, 4], [6, 2]] and in_front.tolist() == [True, True, False]
    shifted = torch.eye(4)
    shifted[0, 3] = 0.25  # the camera 0.25 m along base x: the first point now sits left of the centre
    assert image_cells(pts[:1], K[:1], shifted[None], 32, 8)[0].tolist() == [[2, 4]]


def grounding_batch(n=4, seed=0):
    """A synthetic contract batch plus stage 0's inputs: a camera at the base origin looking along +z (K for the
    32-px image), the end effector 0.8 m in front of it and a next event within 0.1 m of it."""
    from vla_ros.core.config import from_dict
    from vla_ros.policies.config import PolicyConfig

    batch = synthetic_batch(from_dict(PolicyConfig, policy_cfg(use_esm=False, stage=0), "policy"), n, seed=seed)
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 0.4 - 0.2
    batch["ee_position_m"] = torch.cat([xy, torch.full((n, 1), 0.8)], -1)[:, None]
    batch["subgoal_m"] = (torch.rand(n, 1, 3, generator=g) - 0.5) * 0.2
    batch["K"] = torch.tensor([[32.0, 0, 16], [0, 32.0, 16], [0, 0, 1]]).expand(n, 1, 3, 3).clone()
    batch["T_base_camera"] = torch.eye(4).expand(n, 1, 4, 4).clone()
    return batch


def test_stage0_learns_the_grounded_cells_and_stage1_starts_from_it(tmp_path):
    from vla_ros.policies.checkpoint_io import save_checkpoint

    torch.manual_seed(0)
    policy = make_policy(policy_cfg(use_esm=False, stage=0, kosmos2_init="spatial"))
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("model.backbone.") for n in trainable)  # the backbone only
    batch = grounding_batch()
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
    first = policy.compute_loss(batch)[1]
    for _ in range(200):
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    metrics = policy.compute_loss(batch)[1]
    # it fits one batch's cells (16 digits; an untrained model gets at most a few by chance)
    assert first["grounding_acc"] <= 0.5 and metrics["grounding_acc"] >= 0.75
    assert metrics["grounding_ce"] < 0.1 * first["grounding_ce"]
    save_checkpoint(policy, tmp_path / "s0")
    stage1 = make_policy(policy_cfg(use_esm=False, stage=1, init_from=str(tmp_path / "s0")))
    for k, v in policy.model.backbone.state_dict().items():
        torch.testing.assert_close(stage1.model.backbone.state_dict()[k], v, rtol=0, atol=0)
    assert all(p.requires_grad for p in stage1.model.act_head.parameters())


def test_stage0_scores_exactly_the_four_cell_digits():
    from vla_ros.policies.falcon.grounding_falcon import ANSWER, DIGIT_OFFSETS, grounding_targets
    from vla_ros.policies.falcon.processing_falcon import reference_frames

    policy = make_policy(policy_cfg(use_esm=False, stage=0))
    frames = reference_frames(grounding_batch())
    cells, valid = grounding_targets(frames, 32, 8)
    assert valid.all()
    tok = byte_tokenizer()
    for instruction, c in zip(frames["instruction"], cells.tolist()):
        ids = tok([policy.ref.prompt.format(instruction) + ANSWER.format(*c)])["input_ids"][0]
        assert "".join(tok.decode([ids[len(ids) - 1 - o]]) for o in DIGIT_OFFSETS) == "".join(map(str, c))


def test_stage0_names_what_it_needs():
    policy = make_policy(policy_cfg(use_esm=False, stage=0))
    batch = grounding_batch()
    del batch["ee_position_m"]
    with pytest.raises(ValueError, match="ee_position_m"):
        policy.compute_loss(batch)
    with pytest.raises(ConfigError, match="stage"):
        make_policy(policy_cfg(use_esm=True, stage=0))
    with pytest.raises(ConfigError, match="grounding_grid"):
        make_policy(policy_cfg(use_esm=False, stage=0, grounding_grid=16))
