"""SpatialVLA as released: known answers of its pieces (Ego3D, ZoeDepth transform, action grids, un-normalisation,
ensembler, prompt, prefix-LM decoding) and the tiny model end to end."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from scipy.stats import norm

from vla_ros.core.config import to_dict
from vla_ros.core.types import CameraObservation, Observation
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.spatialvla.configuration_spatialvla import REFERENCE_NUM_BINS, uniform_bin_policy
from vla_ros.policies.spatialvla.ego3d_spatialvla import (
    Ego3DPositionEmbeddingMLP,
    backproject_patch,
    subpatch_pixels,
)
from vla_ros.policies.spatialvla.processing_spatialvla import (
    ActionEnsembler,
    SpatialActionGrid,
    SpatialVLAInputError,
    build_prompt,
    gaussian_bin_policy,
    unnormalize,
    zoe_postprocess,
    zoe_preprocess,
)

STATS = {"bridge_orig/1.0.0": {"action": {"q01": [-0.02, -0.03, -0.04, -0.1, -0.2, -0.3, 0.0],
                                          "q99": [0.02, 0.03, 0.04, 0.1, 0.2, 0.3, 1.0],
                                          "mask": [True] * 6 + [False]}},
         "fractal20220817_data/0.1.0": {"action": {"q01": [-0.1] * 7, "q99": [0.1] * 7}}}


def tiny_policy(seed=0, **method_args):
    torch.manual_seed(seed)
    cfg = tiny_config("spatialvla", image_size=224, action_reference="delta_target",
                      method_args={"statistics": STATS, "unnorm_key": "bridge_orig/1.0.0", **method_args})
    policy = make_policy(cfg)
    with torch.no_grad():  # break the small-init symmetry so greedy decoding visits many ids
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return policy.eval()


def observation(instruction="Put the spoon on the towel", seed=0):
    rng = np.random.default_rng(seed)
    cam = CameraObservation("front", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8),
                            np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]]), 3.0)
    return Observation(3.0, [cam], np.zeros(6, np.float32), instruction)


# --- Ego3D ----------------------------------------------------------------------------------------------------
def test_ego3d_back_projects_the_sub_patch_centres_with_the_rescaled_bridge_intrinsics():
    uv = subpatch_pixels(224, 14, 2)
    assert uv.shape == (3, 32 * 32) and uv[:, 0].tolist() == [3.5, 3.5, 1.0] and uv[:, 1].tolist() == [10.5, 3.5, 1.0]
    fx, cx = 623.588 * 224 / 640, 319.501 * 224 / 640  # Bridge K at 640x480, rescaled to 224x224
    fy, cy = 623.588 * 224 / 480, 239.545 * 224 / 480
    K = torch.tensor([[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]])
    depth = torch.zeros(1, 1, 224, 224)
    depth[..., 28:35, 77:84] = 1.5  # the 7x7 block whose centre is (u, v) = (80.5, 31.5): patch (2, 5), sub (0, 1)
    depth[..., 28:35, 70:77] = 0.4  # its left neighbour: sub (0, 0)
    pts = backproject_patch(K, depth, uv, 14, 2)
    assert pts.shape == (1, 256, 12)
    p = pts[0, 2 * 16 + 5].reshape(4, 3)  # 4 sub-points (row-major) x xyz
    np.testing.assert_allclose(p[1].numpy(), [(80.5 - cx) / fx * 1.5, (31.5 - cy) / fy * 1.5, 1.5], rtol=1e-5)
    np.testing.assert_allclose(p[0].numpy(), [(73.5 - cx) / fx * 0.4, (31.5 - cy) / fy * 0.4, 0.4], rtol=1e-5)
    np.testing.assert_allclose(p[2:].numpy(), 0.0)


def test_ego3d_frequency_encoding_order_and_mlp_layout():
    mlp = Ego3DPositionEmbeddingMLP(12, 40, 8)
    xyz = torch.tensor([[[0.5, -1.0, 3.0] * 4]])
    enc = mlp.frequency_encoding(xyz)[0, 0]
    assert enc.shape == (12 * 17,)
    x = 0.25  # (0.5 - 0) / 2
    f = 2.0 ** np.arange(8)
    np.testing.assert_allclose(enc[:17].numpy(), np.r_[x, np.sin(f * x), np.cos(f * x)], rtol=1e-6)
    np.testing.assert_allclose(enc[17].item(), -0.5)  # y: (-1 - 0) / 2
    np.testing.assert_allclose(enc[34].item(), 0.5)  # z: (3 - 2) / 2
    head = mlp.position_embedding_head
    assert [type(m).__name__ for m in head] == ["Linear", "LayerNorm", "ReLU", "Linear"]
    assert head[0].weight.shape == (40, 204) and head[3].weight.shape == (40, 40)


# --- ZoeDepth transform -------------------------------------------------------------------------------------------
def test_zoe_preprocessing_pads_by_reflection_resizes_to_384_and_normalises():
    img = torch.linspace(0, 1, 224)[None, None, None].expand(1, 3, 224, 224).clone()
    x = zoe_preprocess(img)
    assert x.shape == (1, 3, 384, 384)
    np.testing.assert_allclose(x[0, 0, 0, 0].item(), (img[0, 0, 0, 31].item() - 0.5) / 0.5, atol=1e-6)  # reflected
    np.testing.assert_allclose(x[0, 0, 0, -1].item(), (img[0, 0, 0, 224 - 32].item() - 0.5) / 0.5, atol=1e-6)
    d = zoe_postprocess(torch.full((2, 384, 384), 1.7), 224, 224)
    assert d.shape == (2, 1, 224, 224)
    np.testing.assert_allclose(d.numpy(), 1.7, rtol=1e-6)


# --- action grids ------------------------------------------------------------------------------------------------
def test_grid_decode_clips_translation_to_unit_box_and_gripper_is_two_bins():
    grid = SpatialActionGrid(uniform_bin_policy(), REFERENCE_NUM_BINS)
    theta_i, phi_i, r_i = 8, 16, 7  # theta ~ pi/2, phi ~ 0, r in the last bin (mid 1.62 > 1)
    tok = np.array([[(theta_i * 32 + phi_i) * 8 + r_i, 4096, 8193]])
    a = grid.decode(tok)[0]
    assert a[0] == 1.0 and abs(a[1]) < 1.0 and a[6] == 1.0
    np.testing.assert_allclose(a[3:6], -1 + 1 / 16)  # first rotation bin's midpoint on [-1, 1] / 16
    assert grid.encode(np.array([[0, 0, 0, 0, 0, 0, 0.5]]))[0, 2] == 8193  # gripper token from >= 0.5
    assert grid.encode(np.array([[0, 0, 0, 0, 0, 0, 0.4999]]))[0, 2] == 8192
    assert grid.decode(np.array([[0, 4096, 8192]]))[0, 6] == 0.0


def test_gaussian_edges_are_equal_probability_and_round_trip_through_explicit_bin_policy():
    gs = {k: {"mu": 0.1, "sigma": 0.3} for k in ("theta", "phi", "r", "roll", "pitch", "yaw")}
    policy = gaussian_bin_policy(gs, REFERENCE_NUM_BINS, min_sigma=0.5)  # sigma raised to 0.5
    e = np.array(policy["rotation"]["roll_bins"])
    assert e[0] == -1.0 and e[-1] == 1.0 and len(e) == 17
    np.testing.assert_allclose(np.diff(norm.cdf(e, 0.1, 0.5)), (norm.cdf(1, 0.1, 0.5) - norm.cdf(-1, 0.1, 0.5)) / 16)
    grid = SpatialActionGrid(policy, REFERENCE_NUM_BINS)
    rng = np.random.default_rng(0)
    tok = np.stack([rng.integers(0, 4096, 200), rng.integers(4096, 8192, 200), rng.integers(8192, 8194, 200)], 1)
    actions = grid.decode(tok)
    inside = np.abs(actions[:, :3]).max(1) < 1.0  # translation midpoints that were not clipped
    np.testing.assert_array_equal(grid.encode(actions)[inside], tok[inside])
    assert inside.sum() > 50


def test_unnormalise_uses_q01_q99_where_the_mask_is_true():
    a = np.array([[-1.0, 0.0, 1.0, 0.5, -0.5, 0.0, 1.0]])
    out = unnormalize(a, STATS["bridge_orig/1.0.0"]["action"])
    np.testing.assert_allclose(out, [[-0.02, 0.0, 0.04, 0.05, -0.1, 0.0, 1.0]], atol=1e-12)
    out = unnormalize(np.array([[0.0] * 6 + [1.0]]), STATS["fractal20220817_data/0.1.0"]["action"])  # no mask: all
    np.testing.assert_allclose(out, [[0.0] * 6 + [0.1]], atol=1e-12)


def test_ensembler_weights_and_picks_each_chunks_current_step():
    ens = ActionEnsembler(horizon=4, temp=-0.8)
    w = np.exp(0.8 * np.arange(3))
    np.testing.assert_allclose(ens.weights(3), w / w.sum())
    chunks = [np.arange(28, dtype=float).reshape(4, 7) + 100 * i for i in range(5)]
    for c in chunks[:2]:
        ens(c)
    out = ens(chunks[2])  # oldest (age 2) gets exp(0), the newest (age 0) exp(1.6)
    np.testing.assert_allclose(out, (w[0] * chunks[0][2] + w[1] * chunks[1][1] + w[2] * chunks[2][0]) / w.sum())
    ens(chunks[3])
    ens(chunks[4])
    assert len(ens.history) == 4  # horizon 4: the oldest fell out


# --- prompt, decoding, the whole tiny model ------------------------------------------------------------------------
def test_prompt_is_image_tokens_bos_lower_cased_instruction_newline():
    policy = tiny_policy()
    assert build_prompt("Put The Spoon", 2) == "<image><image><bos>put the spoon\n"
    ids = policy.prompt_ids(["Put The Spoon"], "cpu")[0].tolist()
    assert ids[:256] == [policy.image_token_index] * 256 and ids[256] == policy.tokenizer.token_to_id("<bos>")
    assert policy.tokenizer.decode(ids[257:], skip_special_tokens=False).replace(" ", "") == "put▁the▁spoon\n"


def _naive_tokens(policy, batch, n):
    """Greedy decoding recomputing the whole sequence each step (no cache): prompt bidirectional, then causal."""
    rgb = batch["rgb"][:, 0]
    ids = policy.prompt_ids(batch["instruction"], "cpu")
    feats = policy.image_features(rgb, policy.checkpoint_K(1, "cpu"))
    L, out = ids.shape[1], []
    for _ in range(n):
        seq = torch.cat([ids, torch.tensor([out], dtype=torch.long).reshape(1, -1)], 1)
        emb = policy.embed(seq, feats)
        S = seq.shape[1]
        blocked = torch.triu(torch.ones(S, S, dtype=torch.bool), 1)
        blocked[:, :L] = False
        mask = torch.zeros(S, S).masked_fill(blocked, torch.finfo(torch.float32).min)[None, None]
        logits = policy.language_model(inputs_embeds=emb, attention_mask={"full_attention": mask,
                                                                          "sliding_attention": mask},
                                       position_ids=torch.arange(1, S + 1)[None]).logits[0, -1]
        out.append(int(logits.argmax()))
    return out


def test_cached_greedy_decoding_equals_full_recomputation_with_the_prefix_lm_mask():
    policy = tiny_policy()
    batch = policy.observation_to_batch(observation())
    with torch.no_grad():
        fast = policy.generate_action_tokens(batch, ("rgb",))[0].tolist()
        slow = _naive_tokens(policy, batch, 12)
    assert fast == slow and len(fast) == 12
    assert len(set(fast)) > 3


def test_prefix_is_bidirectional_later_tokens_causal_and_sliding_layers_drop_old_keys():
    policy = tiny_policy()
    m = policy.attention_masks(2, 0, 5, "cpu")
    assert m["full_attention"].shape == (2, 1, 5, 5) and (m["full_attention"] == 0).all()
    policy.language_model.config.sliding_window = 4
    m = policy.attention_masks(1, 10, 1, "cpu")
    assert (m["full_attention"] == 0).all() and m["full_attention"].shape == (1, 1, 1, 11)
    assert (m["sliding_attention"][0, 0, 0, :7] < -1e30).all() and (m["sliding_attention"][0, 0, 0, 7:] == 0).all()


def test_constrained_decoding_flag_keeps_each_token_in_its_slot():
    policy = tiny_policy(constrain_action_tokens=True)
    with torch.no_grad():
        tok = policy.generate_action_tokens(policy.observation_to_batch(observation()), ("rgb",))[0]
    idx = (tok - policy.action_begin).reshape(4, 3)
    assert ((idx[:, 0] >= 0) & (idx[:, 0] < 4096)).all() and ((idx[:, 1] >= 4096) & (idx[:, 1] < 8192)).all()
    assert ((idx[:, 2] >= 8192) & (idx[:, 2] < 8194)).all()


def test_infer_publishes_bridge_deltas_with_euler_converted_to_rotation_vectors():
    from scipy.spatial.transform import Rotation

    policy = tiny_policy()
    obs = observation()
    raw = policy.predict_actions(policy.observation_to_batch(obs), ("rgb",))[0, :, 0].numpy()  # (4, 7)
    chunk = policy.infer(obs)
    assert chunk.reference == "delta_target" and chunk.position_m.shape == (4, 1, 3) and chunk.method == "spatialvla"
    np.testing.assert_allclose(chunk.position_m[:, 0], raw[:, :3], atol=1e-6)
    expect = Rotation.from_euler("xyz", raw[:, 3:6].astype(np.float64))
    got = Rotation.from_quat(chunk.quat_xyzw[:, 0])
    np.testing.assert_allclose((got * expect.inv()).magnitude(), 0.0, atol=1e-5)
    np.testing.assert_array_equal(chunk.gripper[:, 0], raw[:, 6])
    assert ((np.abs(raw[:, :3]) <= 0.04 + 1e-9) & (raw[:, 6:7] >= 0)).all()  # within the q01/q99 box


def test_simpler_ensembling_publishes_one_step_and_thresholds_the_gripper():
    policy = tiny_policy(ensemble="simpler")
    policy.reset()
    obs = observation()
    raw = policy.predict_actions(policy.observation_to_batch(obs), ("rgb",))[0, :, 0].numpy()
    first = policy.infer(obs)
    assert first.horizon == 1
    np.testing.assert_allclose(first.position_m[0, 0], raw[0, :3], atol=1e-6)  # one chunk: its step 0
    second = policy.infer(obs)  # same observation: chunk 1's step 1 and chunk 2's step 0, weighted
    w = np.exp(0.8 * np.arange(2))
    np.testing.assert_allclose(second.position_m[0, 0], (w[0] * raw[1, :3] + w[1] * raw[0, :3]) / w.sum(), atol=1e-6)
    assert second.gripper[0, 0] in (0.0, 1.0)


def test_checkpoint_intrinsics_follow_the_unnorm_key_else_default_and_camera_info_is_a_flag():
    ic = {"default": {"width": 640, "height": 480, "intrinsic": [[600, 0, 320], [0, 600, 240], [0, 0, 1]]},
          "bridge_orig/1.0.0": {"width": 320, "height": 240, "intrinsic": [[300, 0, 160], [0, 300, 120], [0, 0, 1]]}}
    policy = tiny_policy(intrinsic_config=ic)
    np.testing.assert_allclose(policy.checkpoint_K(1, "cpu")[0, 0, 0].item(), 300 * 224 / 320)
    policy = tiny_policy(intrinsic_config=ic, unnorm_key="fractal20220817_data/0.1.0")
    np.testing.assert_allclose(policy.checkpoint_K(1, "cpu")[0, 1, 1].item(), 600 * 224 / 480)
    a = tiny_policy(intrinsics_source="camera_info").infer(observation()).position_m
    b = tiny_policy().infer(observation()).position_m
    assert a.shape == b.shape


def test_sensor_depth_is_a_flag_and_replaces_zoedepth_when_fresh():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    K = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])

    def obs(depth):
        cam = CameraObservation("front", rgb, K, 3.0, depth, None if depth is None else depth > 0)
        return Observation(3.0, [cam], np.zeros(6, np.float32), "stack the cups")

    zoe, sensor = tiny_policy(), tiny_policy(depth_source="sensor")
    near = np.full((120, 160), 0.3, np.float32)
    assert zoe.infer(obs(near)).modalities == ("rgb",)  # reference: the camera's depth is not read
    assert sensor.infer(obs(near)).modalities == ("rgb", "depth")
    assert sensor.infer(obs(None)).modalities == ("rgb",)  # no depth: ZoeDepth
    b = sensor.observation_to_batch(obs(near))
    K224 = sensor.checkpoint_K(1, "cpu")
    with torch.no_grad():
        f_near = sensor.image_features(b["rgb"][:, 0], K224, b["depth_m"][:, :1])
        f_far = sensor.image_features(b["rgb"][:, 0], K224, torch.full((1, 1, 224, 224), 3.0))
        f_zoe = sensor.image_features(b["rgb"][:, 0], K224)
        f_zoe_ref = zoe.image_features(b["rgb"][:, 0], K224)
    assert not torch.allclose(f_near, f_far) and not torch.allclose(f_near, f_zoe)
    torch.testing.assert_close(f_zoe, f_zoe_ref)  # same seed, same weights: ZoeDepth path identical


def _train_batch(policy, instructions, seed=0):
    g = torch.Generator().manual_seed(seed)
    B = len(instructions)
    action = torch.zeros(B, 4, 1, 7)
    action[..., :3] = (torch.rand(B, 4, 1, 3, generator=g) - 0.5) * 0.03
    action[..., 3:6] = (torch.rand(B, 4, 1, 3, generator=g) - 0.5) * 0.1
    action[..., 6] = (torch.rand(B, 4, 1, generator=g) > 0.5).float()
    return {"rgb": torch.rand(B, 1, 3, 224, 224, generator=g), "K": torch.eye(3).expand(B, 1, 3, 3),
            "instruction": instructions, "action": action}


def test_training_loss_targets_the_action_tokens_and_matches_the_inference_prefix():
    from vla_ros.policies.spatialvla.loss_spatialvla import action_token_ids

    policy = tiny_policy()
    batch = _train_batch(policy, ["pick up the cup", "open the drawer now"])
    ids = action_token_ids(policy, batch["action"], None)
    assert [len(s) for s in ids] == [13, 13] and ids[0][-1] == policy.eos_id
    idx = np.array(ids[0][:12]).reshape(4, 3) - policy.action_begin
    assert (idx[:, 0] < 4096).all() and ((idx[:, 1] >= 4096) & (idx[:, 1] < 8192)).all()
    np.testing.assert_array_equal(idx[:, 2] - 8192, batch["action"][0, :, 0, 6].numpy())
    pad = torch.tensor([[False, False, True, True]] * 2)
    assert action_token_ids(policy, batch["action"], pad)[0][6:12] == [-100] * 6
    from vla_ros.policies.spatialvla.loss_spatialvla import teacher_forced_logits

    with torch.no_grad():  # the first action token sees the prompt as at inference (prefix-LM both ways)
        logits, labels = teacher_forced_logits(policy, batch)
        first = [policy.encode({k: v[i:i + 1] for k, v in batch.items()}, ("rgb",))["logits"][0] for i in (0, 1)]
        n_prompt = [len(policy.prompt_ids([t], "cpu")[0]) for t in batch["instruction"]]
        torch.testing.assert_close(logits[1, n_prompt[1] - 1], first[1].float(), rtol=1e-4, atol=1e-4)  # unpadded
        # the shorter sample is right-padded: the reference's mask lets its prompt see the padding (a quirk) ...
        assert not torch.allclose(logits[0, n_prompt[0] - 1], first[0].float(), atol=1e-3)
        policy.args.train_mask_padding = True  # ... which the departure flag masks
        logits, _ = teacher_forced_logits(policy, batch)
        torch.testing.assert_close(logits[0, n_prompt[0] - 1], first[0].float(), rtol=1e-4, atol=1e-4)
        policy.args.train_mask_padding = False
    policy.train()
    loss, metrics = policy.compute_loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and policy.spatial_embed_tokens.weight.grad.abs().sum() > 0
    assert policy.position_embedding_3d.position_embedding_head[0].weight.grad is not None
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
    first = float(loss.detach())
    for _ in range(10):
        opt.zero_grad()
        loss, _ = policy.compute_loss(batch)
        loss.backward()
        opt.step()
    assert float(loss) < first - 3.0, (first, float(loss))


def test_the_labelled_positions_loss_equals_the_full_logits_loss():
    from vla_ros.policies.spatialvla.loss_spatialvla import IGNORE, reference_loss, teacher_forced_logits

    policy = tiny_policy()
    batch = _train_batch(policy, ["pick up the cup", "open the drawer now"])
    with torch.no_grad():
        logits, labels = teacher_forced_logits(policy, batch)
        full = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                                 ignore_index=IGNORE)
        loss, metrics = reference_loss(policy, batch)
    torch.testing.assert_close(loss, full, rtol=1e-5, atol=1e-5)
    assert metrics["token_ce"] == pytest.approx(float(full), rel=1e-5)


def test_training_from_data_fits_the_statistics_and_gaussian_edges_and_the_checkpoint_keeps_them(tmp_path):
    from vla_ros.policies.checkpoint_io import load_checkpoint
    from vla_ros.policies.spatialvla.processing_spatialvla import (
        dataset_statistics,
        gaussian_bin_policy,
        gaussian_params,
        normalize,
        reference_actions,
    )
    from vla_ros.training.synthetic import synthetic_batch
    from vla_ros.training.trainer import TrainConfig, train

    # known answers: q01/q99 per dimension, the gripper left out of the mask, rotation vectors as Euler angles
    rng = np.random.default_rng(0)
    acts = np.concatenate([rng.normal(0, 0.01, (2000, 3)), rng.normal(0, 0.05, (2000, 3)),
                           (rng.random((2000, 1)) > 0.5)], 1)
    raw = reference_actions(acts)
    np.testing.assert_allclose(raw[:, 3:6], Rotation.from_rotvec(acts[:, 3:6]).as_euler("xyz"))
    stats = dataset_statistics(raw)["action"]
    np.testing.assert_allclose(stats["q01"], np.quantile(raw, 0.01, axis=0))
    assert stats["mask"] == [True] * 6 + [False]
    gs = gaussian_params(normalize(raw, stats))
    assert abs(gs["x"]["mu"]) < 0.05 and 0.2 < gs["x"]["sigma"] < 0.6 and gs["r"]["mu"] > 0
    with pytest.raises(SpatialVLAInputError, match="finite"):
        dataset_statistics(np.full((3, 7), np.nan))

    cfg = tiny_config("spatialvla", image_size=224, action_reference="delta_target", modalities="rgbd",
                      method_args={"unnorm_key": "mine", "min_sigma": 0.3})
    data = synthetic_batch(cfg, 8, seed=1)
    samples = [{k: (v[i] if torch.is_tensor(v) else v[i]) for k, v in data.items()} for i in range(8)]
    out = tmp_path / "run"
    train(TrainConfig(policy=to_dict(cfg), out=str(out), steps=2, batch_size=8, eval_every=2, ckpt_every=2,
                      val_batches=1), progress=False, train_data=samples, val_data=samples)  # each sample alike
    policy = load_checkpoint(out / "checkpoint")
    args = policy.args
    assert args.unnorm_key == "mine" and set(args.statistics) == {"mine"}
    fitted = reference_actions(np.concatenate([s["action"].reshape(-1, 7).numpy() for s in samples] * 9))  # 8+1 draws
    np.testing.assert_allclose(args.statistics["mine"]["action"]["q99"], dataset_statistics(fitted)["action"]["q99"])
    want = gaussian_bin_policy(gaussian_params(normalize(fitted, args.statistics["mine"]["action"])),
                               args.num_bins, 0.3)
    for group in ("translation", "rotation"):  # from the fitted Gaussians (the fit saw the same actions)
        for name, edges in args.bin_policy[group].items():
            assert len(edges) == args.num_bins[group][name] + 1 and np.all(np.diff(edges) >= 0)
            np.testing.assert_allclose(edges, want[group][name], atol=1e-9)
    assert policy.infer(observation()).position_m.shape[0] == 4
    # stage 2 (--init-from) from the same YAML: the fitted statistics and edges are not a config mismatch
    train(TrainConfig(policy=to_dict(cfg), out=str(tmp_path / "ft"), steps=1, batch_size=8, eval_every=1,
                      ckpt_every=1, val_batches=1, init_from=str(out / "checkpoint")), progress=False,
          train_data=samples, val_data=samples)
    assert load_checkpoint(tmp_path / "ft" / "checkpoint").args.bin_policy == args.bin_policy
