"""Spatial Forcing: alignment targets and loss with known answers, the loss goes down, the teacher stays out of
the model and the checkpoint, and inference is exactly the baseline's computation."""
import pytest
import torch
import torch.nn.functional as F

from vla_ros.core.config import ConfigError
from vla_ros.policies.checkpoint_io import save_checkpoint
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.spatial_forcing.processing_spatial_forcing import (
    alignment_target,
    cosine_alignment_loss,
    sincos_2d,
    teacher_images,
)
from vla_ros.training.synthetic import fit_batch, synthetic_batch, synthetic_norm_stats


def build(method="spatial_forcing", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = tiny_config(method, **kw)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def test_target_is_teacher_tokens_plus_scaled_pe_on_the_same_grid():
    torch.manual_seed(0)
    tokens = torch.randn(2, 1, 12, 8)  # a 3 x 4 teacher grid
    tgt = alignment_target(tokens, (3, 4), 0.1, (3, 4))
    torch.testing.assert_close(tgt, tokens.reshape(2, 12, 8) + 0.1 * sincos_2d(8, 3, 4))
    pe = sincos_2d(8, 3, 4)
    # row-major grid: token (y=1, x=2) is index 6; channels [sin y, cos y, sin x, cos x] at frequencies 1, 1e-2
    torch.testing.assert_close(pe[6], torch.tensor([0.8414710, 0.01, 0.5403023, 0.99995, 0.9092974, 0.0199987,
                                                    -0.4161468, 0.9998]), atol=1e-5, rtol=0)


def test_target_is_bilinearly_resized_to_the_vla_grid():
    tokens = torch.arange(4.0).reshape(1, 1, 4, 1).repeat(1, 1, 1, 4)  # 2 x 2 grid, values 0..3, 4 channels
    tgt = alignment_target(tokens, (4, 4), 0.0, (2, 2))
    expected = F.interpolate(torch.arange(4.0).reshape(1, 1, 2, 2), size=(4, 4), mode="bilinear",
                             align_corners=False).reshape(16)
    torch.testing.assert_close(tgt[0, :, 0], expected)
    torch.testing.assert_close(tgt[0, 5, 0], torch.tensor(0.75))  # (y=1, x=1): 0.75 of the way inside the grid


def test_cosine_loss_known_values():
    a = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    assert cosine_alignment_loss(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert cosine_alignment_loss(a, -a).item() == pytest.approx(2.0)
    assert cosine_alignment_loss(a, torch.tensor([[[0.0, 1.0], [3.0, 0.0]]])).item() == pytest.approx(1.0)


def test_teacher_input_is_resized_to_its_size():
    x = torch.rand(2, 1, 3, 64, 64)
    assert teacher_images(x, 64) is x
    assert teacher_images(x, 28).shape == (2, 1, 3, 28, 28)


def test_alignment_loss_goes_down_total_is_action_plus_alpha_align_and_teacher_is_not_saved(tmp_path):
    policy = build()
    batch = synthetic_batch(policy.config, 8, seed=2)
    aligns = [m["align_loss"] for m in fit_batch(policy, batch, 25, lr=1e-3)]
    assert aligns[-1] < aligns[0] * 0.5, aligns
    feats = policy.encode(batch, ("rgb",))
    action, _ = policy.head_loss(feats, batch)
    extra, m = policy.extra_loss(feats, batch)
    torch.testing.assert_close(extra, torch.tensor(0.5 * m["align_loss"]))
    total, m2 = policy.compute_loss(batch)
    torch.testing.assert_close(total, action + extra)
    # the teacher is frozen, never trained and never part of the model or the checkpoint
    teacher = policy.teacher()
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert not any(p is q for p in policy.parameters() for q in teacher.parameters())
    assert not any("teacher" in k for k in policy.state_dict())
    save_checkpoint(policy, tmp_path)
    from safetensors.torch import load_file

    assert not any("teacher" in k or k.startswith("esm.") for k in load_file(str(tmp_path / "model.safetensors")))


def test_inference_is_the_baseline_computation():
    sf, base = build(seed=3), build("baseline", seed=4)
    state = {k: v for k, v in sf.state_dict().items() if not k.startswith("projector.")}
    assert set(state) == set(base.state_dict())  # the same model plus a training-only projector
    base.load_state_dict(state)
    batch = synthetic_batch(sf.config, 2, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(sf.predict_actions(batch, ("rgb", "depth")), base.predict_actions(batch, ("rgb",)),
                                   rtol=0, atol=0)
    assert sf._teacher == []  # inference never built the teacher


def test_align_layer_must_exist():
    with pytest.raises(ConfigError, match="align_layer"):
        build(method_args={**tiny_config("spatial_forcing").method_args, "align_layer": 9})
