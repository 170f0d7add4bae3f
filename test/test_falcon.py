"""FALCON: injection frequencies, zero-initialised adapter, pooling, two-stage freezing, the action loss."""
import pytest
import torch
import torch.nn.functional as F

from vla_ros.core.config import ConfigError
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.falcon.processing_falcon import injection, sample_injection
from vla_ros.policies.heads import MLPHead
from vla_ros.training.synthetic import synthetic_batch, synthetic_norm_stats


def build(method="falcon", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = tiny_config(method, **kw)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def presence_batch(n, depth=True, pose=True):
    return {"rgb": torch.zeros(n, 1, 3, 8, 8), "depth_valid": torch.full((n, 1, 8, 8), depth),
            "pose_valid": torch.full((n,), pose)}


def test_injection_frequencies_match_p_over_many_draws():
    g = torch.Generator().manual_seed(0)
    n = 100_000
    use_depth, use_pose = injection(presence_batch(n), ("rgb", "depth", "pose"), True, 0.33, 0.33, g)
    assert abs((~use_depth).float().mean().item() - 0.33) < 0.01  # 3 sigma = 0.0045
    assert abs((~use_pose).float().mean().item() - 0.33) < 0.01
    assert abs((~use_depth & ~use_pose).float().mean().item() - 0.33 ** 2) < 0.01  # independent draws
    on = sample_injection(n, 0.7, generator=g)
    assert abs((~on).float().mean().item() - 0.7) < 0.01
    # absent inputs are never injected; at inference whatever is present (and asked for) is used
    d, p = injection(presence_batch(1000, depth=False, pose=False), ("rgb", "depth", "pose"), True, 0.0, 0.0, g)
    assert not d.any() and not p.any()
    d, p = injection(presence_batch(10), ("rgb", "depth", "pose"), False, 1.0, 1.0)
    assert d.all() and p.all()
    d, p = injection(presence_batch(10), ("rgb", "pose"), False, 0.0, 0.0)
    assert not d.any() and p.all()
    # in training too, only the configured modalities: an RGB-only FALCON is never given depth or pose
    d, p = injection(presence_batch(1000), ("rgb",), True, 0.0, 0.0, g)
    assert not d.any() and not p.any()


def test_an_rgb_only_falcon_trains_differently_from_an_rgbd_pose_one():
    batch = synthetic_batch(build("falcon").config, 4, seed=3)
    losses = []
    for mods in ("rgb", "rgbd_pose"):
        args = {**tiny_config("falcon").method_args, "p_drop_depth": 0.0, "p_drop_pose": 0.0}
        policy = build("falcon", seed=7, modalities=mods, method_args=args)
        policy.adapter[-1].weight.data.normal_(0, 0.1)  # let the spatial tokens reach the head
        policy.train()
        losses.append(policy.compute_loss(batch)[1]["action_loss"])
    assert losses[0] != losses[1]


def test_zero_initialised_adapter_first_forward_equals_the_no_esm_head():
    base, falcon = build("baseline", seed=7), build("falcon", seed=7)
    batch = synthetic_batch(falcon.config, 4, seed=3)
    with torch.no_grad():
        a = base.predict_actions(batch, ("rgb",))
        b = falcon.predict_actions(batch, ("rgb", "depth", "pose"))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_spatial_tokens_are_pooled_and_added_to_the_action_token():
    policy = build()
    torch.nn.init.normal_(policy.adapter[-1].weight)  # make the adapter non-trivial
    batch = synthetic_batch(policy.config, 2, seed=4)
    mods = ("rgb", "depth", "pose")
    with torch.no_grad():
        feats = policy.encode(batch, mods)
        plain = policy.run_vlm(batch)["action_hidden"]
        tokens = policy.spatial_tokens(batch, feats["use_depth"], feats["use_pose"])
    assert policy.pool == "max"  # MLP head
    torch.testing.assert_close(feats["action_hidden"], plain + policy.adapter(tokens.amax(1)))


def test_depth_withheld_with_p_1_equals_rgb_only_inference():
    policy = build(method_args={**tiny_config("falcon").method_args, "p_drop_depth": 1.0, "p_drop_pose": 1.0})
    batch = synthetic_batch(policy.config, 3, seed=2)
    torch.nn.init.normal_(policy.adapter[-1].weight)
    with torch.no_grad():
        train_feats = policy.encode(batch, ("rgb", "depth", "pose"), training=True)
        rgb_only = policy.encode(batch, ("rgb",))
        rgbd = policy.encode(batch, ("rgb", "depth", "pose"))
    assert not train_feats["use_depth"].any() and not train_feats["use_pose"].any()
    torch.testing.assert_close(train_feats["action_hidden"], rgb_only["action_hidden"])
    assert not torch.allclose(rgbd["action_hidden"], rgb_only["action_hidden"])  # depth and pose do matter


def test_unknown_camera_pose_is_not_injected():
    policy = build()
    batch = synthetic_batch(policy.config, 2, seed=2)
    batch["T_base_camera"][0] = float("nan")
    batch["pose_valid"][0] = False
    with torch.no_grad():
        feats = policy.encode(batch, ("rgb", "depth", "pose"))
    assert feats["use_pose"].tolist() == [False, True]
    assert torch.isfinite(feats["action_hidden"]).all()


def test_two_stage_freeze_sets_come_from_the_config():
    policy = build()
    frozen = {n for n, p in policy.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("esm.") for n in frozen)
    assert all(p.requires_grad for n, p in policy.named_parameters() if n.startswith(("vlm.", "adapter.", "head.")))
    policy.apply_stage(2)
    assert all(p.requires_grad for p in policy.parameters())
    args = {**tiny_config("falcon").method_args, "freeze": {"1": ["vlm.", "esm."], "2": ["esm."]}}
    policy = build(method_args=args)
    trainable = {n.split(".")[0] for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable == {"adapter", "head"}
    with pytest.raises(ConfigError, match="stage"):
        build(method_args={**args, "stage": 3})


def test_adapter_learns_from_zero():
    policy = build()
    batch = synthetic_batch(policy.config, 4, seed=1)
    loss, _ = policy.compute_loss(batch)
    loss.backward()
    assert policy.adapter[-1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in policy.esm.parameters())  # stage 1: the ESM is frozen


@pytest.mark.parametrize("kind", ["huber", "mse"])
def test_action_loss_known_values(kind, monkeypatch):
    from vla_ros.policies.config import HeadConfig

    cfg = HeadConfig(arm_loss=kind, huber_delta=0.1, gripper_weight=0.5)
    head = MLPHead(cfg, 8, horizon=2, n_arms=1)
    arm = torch.tensor([[[[0.0] * 6]], [[[0.5] * 6]]]).reshape(1, 2, 1, 6)
    logit = torch.tensor([[[2.0], [-1.0]]])
    monkeypatch.setattr(head, "predict", lambda h, train=False: (arm, logit))
    target_arm = torch.zeros(1, 2, 1, 6)
    target_grip = torch.tensor([[[1.0], [1.0]]])
    total, m = head.loss(torch.zeros(1, 8), target_arm, target_grip, pad=torch.tensor([[False, True]]))
    # only step 0 counts (step 1 is padding): arm error 0, BCE(2, 1)
    bce = F.binary_cross_entropy_with_logits(torch.tensor(2.0), torch.tensor(1.0))
    torch.testing.assert_close(total, 0.5 * bce)
    total, m = head.loss(torch.zeros(1, 8), target_arm, target_grip)
    e = 0.5  # step 1's arm error per dim; step 0's is 0
    per = e ** 2 if kind == "mse" else 0.1 * (e - 0.5 * 0.1)  # Huber beyond delta: delta * (|e| - delta / 2)
    arm_loss = (0.0 + per) / 2
    bce2 = (bce + F.binary_cross_entropy_with_logits(torch.tensor(-1.0), torch.tensor(1.0))) / 2
    torch.testing.assert_close(total, torch.tensor(arm_loss) + 0.5 * bce2)
    assert m["gripper_acc"] == 0.5
