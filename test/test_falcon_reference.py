"""FALCON as released: tiny folders in the released layout (Kosmos-2 folder, Lightning .ckpt, esm folder) loaded
key for key through the real loader; the paper-scale key list on the meta device; known answers for the ESM
inputs (pose, depth, frame selection, position-embedding interpolation), the zero-initialised injector, the loss
and the action mapping; bad input with named errors."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from falcon_release import (  # noqa: E402
    TINY_ESM,
    TINY_TEXT,
    TINY_VISION,
    reference_head_state,
    tiny_load_options,
    write_esm_folder,
    write_kosmos2_folder,
    write_released_ckpt,
)

from vla_ros.core.types import CameraObservation, Observation  # noqa: E402
from vla_ros.policies.checkpoint_io import load_policy  # noqa: E402
from vla_ros.policies.factory import make_policy, released_loader  # noqa: E402
from vla_ros.policies.falcon.kosmos_falcon import Kosmos2FolderError, build_kosmos2  # noqa: E402
from vla_ros.policies.falcon.loading_falcon import ReleasedCheckpointError  # noqa: E402
from vla_ros.policies.falcon.processing_falcon import frames_for_fraction, frames_random  # noqa: E402
from vla_ros.policies.spatial_model.aggregator import normalize_depth_mean_valid  # noqa: E402
from vla_ros.policies.spatial_model.esm import EmbodiedSpatialModel, ESMConfig, pose_encoding_vggt  # noqa: E402


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    d = tmp_path_factory.mktemp("falcon_release")
    kosmos = write_kosmos2_folder(d / "kosmos-2-patch14-224")
    esm, esm_state = write_esm_folder(d / "esm")
    (d / "bridge").mkdir()
    state = write_released_ckpt(d / "bridge" / "falcon-fc-simpler-bridge.ckpt")
    return {"dir": d, "kosmos": kosmos, "esm": esm, "esm_state": esm_state, "state": state,
            "ckpt": d / "bridge" / "falcon-fc-simpler-bridge.ckpt"}


def observation(seed=0, depth=True):
    rng = np.random.default_rng(seed)
    K = np.array([[40.0, 0, 25], [0, 40.0, 20], [0, 0, 1]])
    cam = CameraObservation("front", rng.integers(0, 255, (40, 50, 3), dtype=np.uint8), K, 0.0,
                            depth_m=rng.uniform(0.5, 1.5, (40, 50)).astype(np.float32) if depth else None,
                            T_base_camera=np.eye(4))
    return Observation(0.0, [cam], np.zeros(6, np.float32), "put the carrot on the plate")


# --- loading the released layout -------------------------------------------------------------------------------
def test_tiny_released_ckpt_and_esm_folder_load_key_for_key(release):
    assert released_loader(release["ckpt"]) is not None and released_loader(release["ckpt"].parent) is not None
    policy = load_policy(release["ckpt"], "cpu", tiny_load_options(release["kosmos"], release["esm"]))
    own = policy.model.state_dict()
    for k, v in release["state"].items():
        torch.testing.assert_close(own[k[len("model."):]], v, rtol=0, atol=0)
    for k, v in release["esm_state"].items():
        torch.testing.assert_close(own["act_head.vggt_net." + k], v, rtol=0, atol=0)
    assert set(own) == {k[len("model."):] for k in release["state"]} | {"act_head.vggt_net." + k
                                                                          for k in release["esm_state"]}
    assert policy.config.horizon == 5 and policy.ref.head == "fc" and policy.ref.window == 1  # hyper-parameters
    chunk = policy.infer(observation())
    assert chunk.position_m.shape == (5, 1, 3)  # FC: the whole chunk is executed
    assert set(np.unique(chunk.gripper)) <= {0.0, 1.0} and chunk.modalities == ("rgb",)  # gt fractions 0: RGB only


def test_bf16_loads_the_same_weights_built_empty_without_a_full_precision_copy(release, monkeypatch):
    from vla_ros.policies.falcon import loading_falcon
    from vla_ros.policies.falcon.modeling_falcon_reference import FalconReferenceModel

    built = []
    init = FalconReferenceModel.__init__

    def spy_init(self, *a, **kw):
        init(self, *a, **kw)
        built.append({p.device.type for p in self.parameters()})

    monkeypatch.setattr(FalconReferenceModel, "__init__", spy_init)
    opts = tiny_load_options(release["kosmos"], release["esm"])
    fp32 = load_policy(release["ckpt"], "cpu", opts)
    bf16 = load_policy(release["ckpt"], "cpu", {**opts, "dtype": "bfloat16"})
    assert built == [{"meta"}, {"meta"}]  # shapes only: nothing allocated or initialised before the weights
    esm = loading_falcon.read_esm_state(release["esm"], torch.bfloat16)  # converted tensor by tensor as read
    assert {v.dtype for v in esm.values()} == {torch.bfloat16}
    full = fp32.state_dict()
    for k, v in bf16.state_dict().items():
        assert v.dtype == (torch.bfloat16 if full[k].is_floating_point() else full[k].dtype), k
        torch.testing.assert_close(v, full[k].to(v.dtype), rtol=0, atol=0)
    text = bf16.model.backbone.text_model
    assert text.lm_head.weight is text.model.embed_tokens.weight  # still tied
    assert not any(t.is_meta for t in list(bf16.parameters()) + list(bf16.buffers()))
    assert bf16.infer(observation()).position_m.shape == (5, 1, 3)


def test_a_ckpt_holding_the_esm_needs_no_esm_folder(tmp_path, release):
    ckpt = tmp_path / "with_esm.ckpt"
    state = write_released_ckpt(ckpt, include_esm=release["esm_state"])
    policy = load_policy(ckpt, "cpu", {"kosmos2": str(release["kosmos"])})
    k = "aggregator.pose_embedding.weight"
    own = policy.model.state_dict()
    torch.testing.assert_close(own["act_head.vggt_net." + k], state["model.act_head.vggt_net." + k])


def test_lstm_release_loads_and_executes_one_step_with_a_rolling_window(tmp_path, release):
    ckpt = tmp_path / "lstm.ckpt"
    write_released_ckpt(ckpt, kind="lstm", chunk=10, window=3, extra_hp={"norm_action": True, "norm_min": -0.65,
                                                                         "norm_max": 0.65})
    policy = load_policy(ckpt, "cpu", tiny_load_options(release["kosmos"], release["esm"]))
    assert policy.ref.head == "lstm" and policy.ref.action_norm == "clip" and policy.ref.lstm_layers == 2
    for i in range(5):
        assert policy.infer(observation(i)).position_m.shape == (1, 1, 3)  # one step per inference
    assert len(policy.model.act_head.history) == 3 and len(policy._frames) == 3  # window of 3
    policy.reset()
    assert policy.model.act_head.history == [] and policy._frames == []


# --- bad input -------------------------------------------------------------------------------------------------
def test_a_missing_or_unexpected_esm_key_is_named(tmp_path, release):
    from safetensors.torch import save_file

    broken = dict(release["esm_state"])
    del broken["aggregator.depth_placeholder"]
    (tmp_path / "esm").mkdir()
    save_file(broken, str(tmp_path / "esm" / "model.safetensors"))
    with pytest.raises(ReleasedCheckpointError, match="aggregator.depth_placeholder"):
        load_policy(release["ckpt"], "cpu", tiny_load_options(release["kosmos"], tmp_path / "esm"))
    extra = {**release["esm_state"], "point_head.projects.0.weight": torch.zeros(1)}
    save_file(extra, str(tmp_path / "esm" / "model.safetensors"))
    with pytest.raises(ReleasedCheckpointError, match="point_head.projects.0.weight"):
        load_policy(release["ckpt"], "cpu", tiny_load_options(release["kosmos"], tmp_path / "esm"))
    with pytest.raises(ReleasedCheckpointError, match="load_options.esm"):
        load_policy(release["ckpt"], "cpu", {"kosmos2": str(release["kosmos"])})


def test_a_ckpt_of_another_method_or_with_a_missing_head_key_is_refused(tmp_path, release):
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"model.encoder.weight": torch.zeros(2, 2)}, "hyper_parameters": {}}, str(other))
    with pytest.raises(ReleasedCheckpointError, match="not a FALCON checkpoint"):
        load_policy(other, "cpu", tiny_load_options(release["kosmos"], release["esm"]))
    ckpt = torch.load(str(release["ckpt"]), weights_only=True)
    del ckpt["state_dict"]["model.act_head.spatial_injector.proj1.0.bias"]
    torch.save(ckpt, str(tmp_path / "cut.ckpt"))
    with pytest.raises(ReleasedCheckpointError, match="spatial_injector.proj1.0.bias"):
        load_policy(tmp_path / "cut.ckpt", "cpu", tiny_load_options(release["kosmos"], release["esm"]))


def test_a_kosmos2_folder_without_weights_cannot_start_training(tmp_path, release):
    with pytest.raises(Kosmos2FolderError, match="no weights"):
        build_kosmos2(release["kosmos"], load_weights=True)
    (tmp_path / "config.json").write_text('{"model_type": "paligemma"}')
    with pytest.raises(Kosmos2FolderError, match="kosmos-2"):
        build_kosmos2(tmp_path, load_weights=False)
    cfg = {"method": "falcon", "image_size": 28, "proprio_dim": 0, "horizon": 5,
           "vlm": {"kind": "hf", "path": str(release["kosmos"]), "patch_size": 14},
           "method_args": {"esm": TINY_ESM}}
    with pytest.raises(Kosmos2FolderError, match="no weights"):
        make_policy(cfg)
    with_weights = write_kosmos2_folder(tmp_path / "kosmos_w", weights=True)
    policy = make_policy({**cfg, "vlm": {**cfg["vlm"], "path": str(with_weights)}})
    assert type(policy).__name__ == "FalconReferencePolicy"


# --- paper scale -----------------------------------------------------------------------------------------------
def expected_released_keys() -> dict[str, tuple]:
    """Keys/shapes of the released FC ESM .ckpt (without `model.`) and the esm-1b folder under act_head.vggt_net,
    from transformers' Kosmos2 (kosmos-2-patch14-224 sizes = Kosmos2Config defaults) + the reference's names."""
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

    with torch.device("meta"):
        kos = Kosmos2ForConditionalGeneration(Kosmos2Config())
        head = reference_head_state("fc", 2048, 1024, 5, [1024, 512, 256], [512, 1024], 2048)
        esm = EmbodiedSpatialModel(ESMConfig.vggt_1b(point_head=False)).state_dict()
    out = {f"backbone.{k}": tuple(v.shape) for k, v in kos.state_dict().items()}
    out["action_token"] = (2048,)
    out.update({f"act_head.{k}": tuple(v.shape) for k, v in head.items()})
    out.update({f"act_head.vggt_net.{k}": tuple(v.shape) for k, v in esm.items()})
    return out


def test_paper_scale_keys_and_shapes_equal_the_release_on_meta():
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

    from vla_ros.policies.falcon.configuration_falcon import FalconReferenceArgs
    from vla_ros.policies.falcon.modeling_falcon_reference import FalconReferenceModel

    expected = expected_released_keys()
    with torch.device("meta"):
        model = FalconReferenceModel(Kosmos2ForConditionalGeneration(Kosmos2Config()), FalconReferenceArgs(),
                                     ESMConfig.vggt_1b(point_head=False), chunk=5)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(expected) - set(got)) == [] and sorted(set(got) - set(expected)) == []
    assert {k: v for k, v in got.items() if expected[k] != v} == {}
    # spot checks against the release notes (REFERENCE.md 1.2, 5)
    assert got["backbone.text_model.model.embed_tokens.weight"] == (65037, 2048)
    assert got["backbone.image_to_text_projection.latent_query"] == (64, 2048)
    assert got["act_head.mlp.0.weight"] == (1024, 2048) and got["act_head.actions.mlp.6.weight"] == (30, 256)
    assert got["act_head.gripper.mlp.6.weight"] == (5, 256)
    assert got["act_head.spatial_injector.proj0.0.weight"] == (512, 2048)
    assert got["act_head.spatial_injector.proj1.0.weight"] == (2048, 1024)
    assert got["act_head.vggt_net.aggregator.depth_patch_embed.proj.weight"] == (1024, 2, 14, 14)
    assert got["act_head.vggt_net.aggregator.pose_embedding.weight"] == (1024, 9)
    assert not any(".point_head." in k or ".track_head." in k for k in got)


# --- known answers ---------------------------------------------------------------------------------------------
def test_pose9_of_a_hand_computed_extrinsic_pair():
    T0 = torch.eye(4)
    T1 = torch.eye(4)
    T1[:3, :3] = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # camera 1 turned +90 deg about z
    T1[:3, 3] = torch.tensor([1.0, 0, 0])  # and 1 m along x
    K = torch.tensor([[100.0, 0, 100], [0, 100.0, 100], [0, 0, 1]]).expand(1, 2, 3, 3)
    pose = pose_encoding_vggt(torch.stack([T0, T1])[None], K, (200, 200))[0]
    # E1 E0^-1 = T1^-1: R^T = -90 deg about z, t = -R^T (1, 0, 0) = (0, 1, 0); mean distance (0 + 1) / 2 = 0.5
    s = math.sqrt(0.5)
    expect = torch.tensor([[0, 0, 0, 0, 0, 0, 1, math.pi / 2, math.pi / 2],
                           [0, 2, 0, 0, 0, -s, s, math.pi / 2, math.pi / 2]])
    torch.testing.assert_close(pose, expect, atol=1e-6, rtol=0)


def test_depth_is_divided_by_the_mean_valid_depth_of_the_used_frames_then_masked():
    depth = torch.tensor([[[[1.0, 2.0], [3.0, 100.0]], [[4.0, 4.0], [4.0, 4.0]]]])
    valid = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    both = normalize_depth_mean_valid(depth, valid, torch.tensor([[True, True]]))
    torch.testing.assert_close(both, depth / (22 / 7 + 1e-8) * valid)  # (1 + 2 + 3 + 16) / 7 valid pixels
    first = normalize_depth_mean_valid(depth, valid, torch.tensor([[True, False]]))
    torch.testing.assert_close(first[0, 0], torch.tensor([[0.5, 1.0], [1.5, 0.0]]))
    none = normalize_depth_mean_valid(depth, torch.zeros_like(valid), torch.tensor([[True, True]]))
    assert torch.equal(none, torch.zeros_like(depth))


def test_frame_selection_frequencies_over_many_draws():
    rng = np.random.default_rng(0)
    n = 40_000
    for kind in ("pose", "depth"):
        used = np.mean([bool(frames_random(1, kind, rng)) for _ in range(n)])
        assert abs(used - 0.67 * 0.5) < 0.01  # S = 1: P = 0.67 * P(k = 1 of U{0, 1}) = 0.335
    sizes = np.array([len(frames_random(4, "depth", rng)) for _ in range(n)])
    assert abs((sizes == 0).mean() - (0.33 + 0.67 / 5)) < 0.01
    for k in range(1, 5):
        assert abs((sizes == k).mean() - 0.67 / 5) < 0.01
    draws = [frames_random(4, "depth", rng) for _ in range(2000)]
    assert all(d[0] == 0 for d in draws if d) and all(frames_random(4, "pose", rng) in ([], [0], [0, 1], [0, 1, 2],
                                                                                         [0, 1, 2, 3])
                                                      for _ in range(200))
    assert frames_for_fraction(4, 0.5, "pose", rng) == [0, 1] and frames_for_fraction(4, 0.0, "depth", rng) == []
    others = [frames_for_fraction(4, 0.5, "depth", rng)[1] for _ in range(3000)]
    assert {o for o in others} == {1, 2, 3} and all(frames_for_fraction(3, 1.0, "depth", rng) == [0, 1, 2]
                                                    for _ in range(5))


def test_position_embedding_interpolation_is_antialiased():
    torch.manual_seed(0)
    esm = EmbodiedSpatialModel(ESMConfig(**TINY_ESM))  # pos grid 4 x 4 (56 / 14), input grid 2 x 2
    pe = esm.aggregator.patch_embed
    grid = pe.pos_embed[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    direct = F.interpolate(grid, size=(2, 2), mode="bicubic", align_corners=False)
    anti = F.interpolate(grid, size=(2, 2), mode="bicubic", align_corners=False, antialias=True)
    got = pe.patch_pos_embed(2, 2).reshape(1, 2, 2, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(got, anti)
    assert not torch.allclose(got, direct)
    legacy = EmbodiedSpatialModel(ESMConfig(**TINY_ESM, pos_embed_antialias=False)).aggregator.patch_embed
    legacy.load_state_dict(pe.state_dict())
    torch.testing.assert_close(legacy.patch_pos_embed(2, 2).reshape(1, 2, 2, -1).permute(0, 3, 1, 2), direct)


def test_the_pose_replaces_the_camera_token():
    torch.manual_seed(0)
    agg = EmbodiedSpatialModel(ESMConfig(**TINY_ESM)).aggregator.eval()
    images = torch.rand(1, 2, 3, 28, 28)
    pose9 = torch.randn(1, 2, 9)
    on = torch.tensor([[True, False]])
    with torch.no_grad():
        a = agg(images, pose9=pose9, pose_on=on)[0][-1]
        agg.camera_token[:, 0].add_(1.0)  # frame 0's stock token: replaced, so no effect
        b = agg(images, pose9=pose9, pose_on=on)[0][-1]
        agg.camera_token[:, 1].add_(1.0)  # frame 1 keeps its stock token
        c = agg(images, pose9=pose9, pose_on=on)[0][-1]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(b, c)


def test_zero_initialised_injector_leaves_the_action_token_unchanged():
    from vla_ros.policies.falcon.heads_falcon import FalconActionHead

    torch.manual_seed(0)
    esm = EmbodiedSpatialModel(ESMConfig(**TINY_ESM))
    head = FalconActionHead("fc", 32, 16, 5, 7, [16, 8, 8], esm, 64, (8, 16))
    t_act = torch.randn(3, 1, 32)
    spatial = head.spatial_injector(torch.randn(3, 1, 64) * 10)
    assert torch.equal(spatial, torch.zeros_like(spatial))
    a, g = head(t_act, spatial)
    a0, g0 = head(t_act, None)
    assert torch.equal(a, a0) and torch.equal(g, g0) and a.shape == (3, 1, 5, 6) and g.shape == (3, 1, 5)


def test_loss_is_huber_on_the_arm_plus_a_hundredth_of_the_gripper_bce(release):
    policy = load_policy(release["ckpt"], "cpu", {**tiny_load_options(release["kosmos"], release["esm"]),
                                                  "rotation": "rotvec"})
    torch.manual_seed(0)
    batch = {"rgb": torch.rand(2, 1, 3, 28, 28), "instruction": ["pick up the can", "open the drawer"],
             "action": torch.cat([torch.randn(2, 5, 1, 6) * 2, (torch.rand(2, 5, 1, 1) > 0.5).float()], -1),
             "action_pad": torch.tensor([[False] * 5, [False, False, False, True, True]])}
    policy.rng = np.random.default_rng(0)
    loss, metrics = policy.compute_loss(batch)
    arm, logit = policy.forward_head({**batch}, ("rgb",))
    arm, logit = arm[:, -1], logit[:, -1]
    keep = ~batch["action_pad"]
    target = batch["action"][:, :, 0]
    huber = F.huber_loss(arm[keep], target[..., :6][keep], delta=1.0)
    bce = F.binary_cross_entropy_with_logits(logit[keep], target[..., 6][keep])
    torch.testing.assert_close(loss, huber + 0.01 * bce)


def test_clip_normalisation_and_euler_mapping_round_trip(release):
    policy = load_policy(release["ckpt"], "cpu", tiny_load_options(release["kosmos"], release["esm"]))
    policy.ref.action_norm = "clip"
    raw = torch.tensor([[0.65, -0.65, 0.0, 0.1, -0.2, 0.3], [1.0, -2.0, 0.325, 0.0, 0.0, 0.0]])
    norm = policy._normalize_arm(raw)
    torch.testing.assert_close(norm[:, :3], torch.tensor([[1.0, -1.0, 0.0], [1.0, -1.0, 0.5]]))  # clipped
    back = policy._unnormalize_arm(norm)
    torch.testing.assert_close(back[0], raw[0], atol=1e-5, rtol=0)  # rotation: euler in the head, rotvec out
    from scipy.spatial.transform import Rotation

    rv = policy._unnormalize_arm(torch.tensor([[0.0, 0, 0, 0.2, 0, 0]]) / 0.65)[0, 3:]
    torch.testing.assert_close(rv, torch.tensor(Rotation.from_euler("xyz", [0.2, 0, 0]).as_rotvec(),
                                                dtype=torch.float32))


def test_stage_two_freezes_the_esm_and_the_head_mlps_and_trains_injector_and_vlm(release):
    policy = load_policy(release["ckpt"], "cpu", tiny_load_options(release["kosmos"], release["esm"]))
    policy.apply_stage(2)
    grad = {k: p.requires_grad for k, p in policy.model.named_parameters()}
    assert not any(v for k, v in grad.items() if k.startswith("act_head.vggt_net."))
    assert not any(v for k, v in grad.items() if k.startswith(("act_head.mlp.", "act_head.actions.",
                                                               "act_head.gripper.")))
    assert all(v for k, v in grad.items() if k.startswith("act_head.spatial_injector."))
    assert all(v for k, v in grad.items() if k.startswith("backbone.") or k == "action_token")
    policy.apply_stage(1)
    assert grad["act_head.mlp.0.weight"] is False and policy.model.act_head.mlp[0].weight.requires_grad


# --- two-stage training through the real train loop -------------------------------------------------------------
def test_two_stage_training_stage2_starts_from_stage1_with_the_esm_frozen(tmp_path, release):
    from safetensors.torch import load_file

    from vla_ros.training.trainer import TrainConfig, train

    kosmos = write_kosmos2_folder(tmp_path / "kosmos", weights=True)
    ref = {"hidden_size": 16, "mlp_widths": [16, 8, 8], "injector_widths": [8, 16], "rotation": "rotvec"}
    policy = {"method": "falcon", "image_size": 28, "proprio_dim": 1, "horizon": 5, "modalities": "rgb",
              "vlm": {"kind": "hf", "path": str(kosmos), "patch_size": 14},
              "method_args": {"esm": TINY_ESM, "reference": {**ref, "use_esm": False, "stage": 1}}}
    common = {"steps": 2, "batch_size": 2, "eval_every": 2, "ckpt_every": 2, "val_batches": 1, "resume": False}
    train(TrainConfig(policy=policy, out=str(tmp_path / "s1"), **common), progress=False)
    s1 = load_file(str(tmp_path / "s1" / "checkpoint" / "model.safetensors"))
    assert not any("spatial_injector" in k or "vggt_net" in k for k in s1)
    stage2 = {**policy, "method_args": {"esm": TINY_ESM, "esm_checkpoint": str(release["esm"]),
                                        "reference": {**ref, "stage": 2, "init_from": str(tmp_path / "s1" /
                                                                                          "checkpoint")}}}
    train(TrainConfig(policy=stage2, out=str(tmp_path / "s2"), **common), progress=False)
    s2 = load_file(str(tmp_path / "s2" / "checkpoint" / "model.safetensors"))
    for k, v in release["esm_state"].items():  # the ESM stayed frozen at the esm folder's values
        torch.testing.assert_close(s2["model.act_head.vggt_net." + k], v, rtol=0, atol=0)
    for k in ("model.act_head.mlp.0.weight", "model.act_head.actions.mlp.0.weight"):  # head MLPs frozen
        torch.testing.assert_close(s2[k], s1[k], rtol=0, atol=0)
    assert not torch.equal(s2["model.backbone.text_model.model.layers.0.ffn.fc1.weight"],
                           s1["model.backbone.text_model.model.layers.0.ffn.fc1.weight"])  # the VLM trains
    assert not torch.equal(s2["model.act_head.spatial_injector.proj1.0.weight"],
                           torch.zeros_like(s2["model.act_head.spatial_injector.proj1.0.weight"]))  # injector trains
    loaded = load_policy(tmp_path / "s2" / "checkpoint")
    assert type(loaded).__name__ == "FalconReferencePolicy"
    with pytest.raises(Exception, match="stage-1 checkpoint folder"):
        make_policy({**stage2, "method_args": {**stage2["method_args"], "reference": {
            **stage2["method_args"]["reference"], "init_from": str(tmp_path / "nowhere")}}})


def test_bridge_card_and_statistics_map_actions_as_simplerenv(tmp_path, release):
    import json

    q01 = [-0.03, -0.04, -0.02, -0.08, -0.09, -0.2, 0.0]
    q99 = [0.03, 0.04, 0.04, 0.08, 0.07, 0.2, 1.0]
    (tmp_path / "stats.json").write_text(json.dumps({"action": {"q01": q01, "q99": q99}, "num_transitions": 1}))
    opts = {**tiny_load_options(release["kosmos"], release["esm"]), "card": "falcon-fc-simpler-bridge",
            "statistics": str(tmp_path / "stats.json")}
    policy = load_policy(release["ckpt"], "cpu", opts)
    assert policy.config.action_reference == "delta_target" and policy.config.dt_s == 0.2
    assert policy.config.name == "falcon-fc-simpler-bridge" and policy.ref.action_norm == "q01_q99"
    out = policy._unnormalize_arm(torch.tensor([[0.0, 1.0, -1.0, 0.0, 0.0, 0.0]]))[0]
    torch.testing.assert_close(out[:3], torch.tensor([0.0, 0.04, -0.02]))  # 0.5 (a + 1)(q99 - q01) + q01
    from scipy.spatial.transform import Rotation

    rpy = [0.0, -0.01, 0.0]  # the midpoints of roll / pitch / yaw
    torch.testing.assert_close(out[3:], torch.tensor(Rotation.from_euler("xyz", rpy).as_rotvec(),
                                                     dtype=torch.float32), atol=1e-6, rtol=0)
    with pytest.raises(Exception, match="load_options: unknown"):
        load_policy(release["ckpt"], "cpu", {**opts, "unnorm": "bridge_orig"})


def test_run_cli_turns_esm_and_load_options_into_a_dict():
    import argparse

    from vla_ros.commands.run import add_arguments, load_options

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--robot", "widowx", "--checkpoint", "x.ckpt", "--esm", "/m/esm",
                              "--load-option", "dtype=bfloat16", "--load-option", "chunk=5"])
    assert load_options(args) == {"esm": "/m/esm", "dtype": "bfloat16", "chunk": 5}


def test_per_step_deltas_are_composed_for_a_delta_measured_chunk():
    from scipy.spatial.transform import Rotation

    from vla_ros.policies.falcon.modeling_falcon_reference import accumulate_deltas

    step = np.array([0.01, 0.0, -0.02, 0.0, 0.0, 0.1, 1.0])
    chunk = np.stack([step, step, step])[:, None]  # (3, 1, 7)
    out = accumulate_deltas(chunk)
    np.testing.assert_allclose(out[:, 0, :3], [[0.01, 0, -0.02], [0.02, 0, -0.04], [0.03, 0, -0.06]], atol=1e-12)
    np.testing.assert_allclose(out[:, 0, 5], [0.1, 0.2, 0.3], atol=1e-12)  # about one axis: angles add
    twist = np.array([[0, 0, 0, 0.3, 0, 0, 0], [0, 0, 0, 0, 0.4, 0, 0]], float)[:, None]
    r = accumulate_deltas(twist)[1, 0, 3:6]
    expect = (Rotation.from_rotvec([0, 0.4, 0]) * Rotation.from_rotvec([0.3, 0, 0])).as_rotvec()
    np.testing.assert_allclose(r, expect, atol=1e-12)
    assert np.array_equal(out[:, 0, 6], chunk[:, 0, 6])


def test_the_action_token_sits_before_eos_after_the_image_and_prompt():
    """RoboVLMs order [BOS, 64 image tokens, prompt, ACTION, EOS] under causal attention: the action state depends
    on the image and every prompt token but not on EOS, which comes after it."""
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

    from vla_ros.policies.falcon.kosmos_falcon import action_token_states

    torch.manual_seed(0)
    kos = Kosmos2ForConditionalGeneration(Kosmos2Config(text_config=TINY_TEXT, vision_config=TINY_VISION,
                                                        latent_query_num=4)).eval()
    tok = torch.randn(32)
    px = torch.randn(1, 3, 28, 28)
    ids = torch.tensor([[0, 5, 6, 7, 2]])  # <s> an image of </s>
    mask = torch.ones_like(ids)
    with torch.no_grad():
        a = action_token_states(kos, tok, px, ids, mask)
        b = action_token_states(kos, tok, px, torch.tensor([[0, 5, 6, 7, 3]]), mask)  # another last token
        c = action_token_states(kos, tok, px, torch.tensor([[0, 5, 6, 8, 2]]), mask)  # another prompt token
        d = action_token_states(kos, tok, px + 1, ids, mask)  # another image
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c) and not torch.allclose(a, d)


def test_a_ckpt_without_hyper_parameters_takes_the_head_from_options(tmp_path, release):
    write_released_ckpt(tmp_path / "lstm.ckpt", kind="lstm", chunk=4)
    ckpt = torch.load(str(tmp_path / "lstm.ckpt"), weights_only=True)
    del ckpt["hyper_parameters"]
    torch.save(ckpt, str(tmp_path / "bare.ckpt"))
    opts = tiny_load_options(release["kosmos"], release["esm"])
    with pytest.raises(ReleasedCheckpointError, match="act_head.rnn"):  # FC assumed: the LSTM keys are named
        load_policy(tmp_path / "bare.ckpt", "cpu", opts)
    policy = load_policy(tmp_path / "bare.ckpt", "cpu", {**opts, "head": "lstm", "window": 2})
    assert policy.ref.head == "lstm" and policy.config.horizon == 4 and policy.ref.window == 2  # chunk: tensors


def test_checkpoint_inspect_reports_full_coverage_and_names_a_missing_esm_key(release, tmp_path):
    """`vla-ros checkpoint inspect` on the released .ckpt + esm folder: every key covered; a missing ESM key named."""
    import shutil
    import subprocess

    from safetensors.torch import load_file, save_file

    from vla_ros.policies.inspect_checkpoint import inspect_checkpoint

    opts = {"kosmos2": str(release["kosmos"]), "esm": str(release["esm"]), "card": "falcon-fc-simpler-bridge"}
    r = inspect_checkpoint(release["ckpt"], options=opts)
    assert r.method == "falcon" and r.layout == "released" and r.card.name == "falcon-fc-simpler-bridge"
    assert not (r.missing or r.unexpected or r.shape_mismatch) and r.coverage == 1.0
    assert r.n_tensors == len(release["state"]) + len(release["esm_state"])
    cut = tmp_path / "esm_cut"
    shutil.copytree(release["esm"], cut)
    f = next(cut.glob("*.safetensors"))
    state = load_file(str(f))
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, str(f))
    proc = subprocess.run([sys.executable, "-m", "vla_ros.cli", "checkpoint", "inspect", str(release["ckpt"]),
                           "--esm", str(cut), "--load-option", f"kosmos2={release['kosmos']}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"missing: esm/{dropped}" in proc.stdout


# --- kosmos2_init "spatial": the from-scratch departure ----------------------------------------------------------
def resampler_attention(kos, pixels):
    """(B, heads, latents, image + latent keys) cross-attention weights of Kosmos-2's image-to-text projection, and
    the image tokens' mean magnitude over the latent queries' as they enter it."""
    from vla_ros.policies.falcon.kosmos_falcon import encode_images

    proj, seen = kos.image_to_text_projection, {}
    hook = proj.register_forward_pre_hook(lambda mod, args: seen.update(f=args[0]))
    with torch.no_grad():
        encode_images(kos, pixels)
        hook.remove()
        xa, h = proj.x_attn, proj.dense(seen["f"])
        lq = proj.latent_query.expand(len(pixels), -1, -1)
        kv = torch.cat([h, lq], 1)

        def heads(x):
            return x.view(len(pixels), x.shape[1], xa.num_heads, xa.head_dim).transpose(1, 2)
        q, k = heads(xa.q_proj(lq)), heads(xa.k_proj(kv))
        return (q @ k.transpose(-1, -2) * xa.scaling).softmax(-1), (h.abs().mean() / lq.abs().mean()).item()


def test_spatial_init_gives_sincos_patch_positions_and_a_sharp_image_led_resampler():
    """With transformers' initialisation every latent query spreads its attention almost uniformly over image and
    latent keys (the image average is what a from-scratch model starts from); "spatial" makes each query pick a
    few keys, image tokens among them, and gives the patches the 2-D sin-cos code."""
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

    from vla_ros.policies.falcon.kosmos_falcon import sincos_2d, spatial_init_

    code = sincos_2d(4, 32)  # 8 frequencies per quarter; patch (x=1, y=2) is row 2 * 4 + 1
    assert code[9, 0].item() == pytest.approx(math.sin(1)) and code[9, 8].item() == pytest.approx(math.cos(1))
    assert code[9, 16].item() == pytest.approx(math.sin(2)) and code[9, 24].item() == pytest.approx(math.cos(2))
    vision = {**TINY_VISION, "image_size": 32, "patch_size": 8}  # 16 patches + class token
    cfg = Kosmos2Config(text_config={**TINY_TEXT, "embed_dim": 64}, vision_config=vision, latent_query_num=4)
    px = torch.randn(8, 3, 32, 32)
    torch.manual_seed(0)
    ref, ref_ratio = resampler_attention(Kosmos2ForConditionalGeneration(cfg).eval(), px)
    torch.manual_seed(0)
    kos = spatial_init_(Kosmos2ForConditionalGeneration(cfg)).eval()
    pe = kos.vision_model.model.embeddings.position_embedding.weight
    assert pe[0].abs().sum() == 0 and torch.equal(pe[1:], sincos_2d(4, 32))
    sharp, ratio = resampler_attention(kos, px)
    n_keys = ref.shape[-1]  # 17 image tokens + 4 latents
    assert ref.max(-1).values.mean() < 1.5 / n_keys
    assert sharp.max(-1).values.mean() > 0.3
    assert sharp[..., :17].sum(-1).mean() > 0.3  # the image's share of the attention
    assert ref_ratio < 0.1 and ratio > 1.0  # image tokens swamped by the latents, then above them


def test_spatial_init_is_for_an_inline_kosmos2_only():
    from vla_ros.core.config import ConfigError, from_dict
    from vla_ros.policies.falcon.configuration_falcon import FalconReferenceArgs

    with pytest.raises(ConfigError, match="kosmos2_init"):
        from_dict(FalconReferenceArgs, {"kosmos2_init": "spatial"}, "method_args.reference")
    with pytest.raises(ConfigError, match="kosmos2_init"):
        from_dict(FalconReferenceArgs, {"kosmos2_init": "xavier", "kosmos2": {"latent_query_num": 4},
                                        "tokenizer": "bytes"}, "method_args.reference")
