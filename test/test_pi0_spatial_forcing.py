"""Spatial Forcing as the reference computes it (UV-grid encoding, align_corners resize, projector, masked cosine
loss) with known answers; on tiny π0: the alignment loss falls, padding images are masked out, the teacher is
never saved or run at inference; the bundled small-baseline checkpoint keeps its old target."""
import math

import numpy as np
import pytest
import torch

from vla_ros.policies.checkpoint_io import load_policy, save_checkpoint
from vla_ros.policies.factory import make_policy, tiny_config
from vla_ros.policies.pi0.alignment_pi0 import alignment_mask
from vla_ros.policies.spatial_model.forcing import (
    AlignProjector,
    create_uv_grid,
    masked_cosine_alignment_loss,
    resample_teacher_tokens,
    uv_position_encoding,
)
from vla_ros.training.synthetic import fit_batch, synthetic_batch, synthetic_norm_stats


def test_uv_grid_encoding_of_a_2x2_grid_by_hand():
    # 2x2 grid, aspect 1: spans 1/sqrt(2), points at +-span * (2-1)/2 = +-0.35355339; u along the width.
    a = 0.35355339059327373
    torch.testing.assert_close(create_uv_grid(2, 2), torch.tensor([[[-a, -a], [a, -a]], [[-a, a], [a, a]]],
                                                                  dtype=torch.float64))
    # dim 8: u in channels 0..3, v in 4..7; each [sin(p), sin(p/10), cos(p), cos(p/10)] (omega0 100, 2 freqs)
    s1, s01, c1, c01 = 0.34623359378053553, 0.03534797382403229, 0.9381483350397287, 0.999375065101454
    pe = uv_position_encoding(2, 2, 8, (224, 224))
    neg, pos = [-s1, -s01, c1, c01], [s1, s01, c1, c01]
    expect = torch.tensor([[neg + neg, pos + neg], [neg + pos, pos + pos]])
    torch.testing.assert_close(pe, expect, rtol=1e-6, atol=1e-7)


def test_37x37_teacher_grid_resizes_to_16x16_with_align_corners():
    # a ramp along the width, 2 views of 37 x 37 patches, a student of 2 x 256 tokens: ratio 1 / 2.3125
    ramp = torch.arange(37, dtype=torch.float32)
    tokens = ramp.view(1, 37).expand(37, 37).reshape(1, 1, 1369, 1).expand(1, 2, 1369, 4).contiguous()
    out = resample_teacher_tokens(tokens, (37, 37), (518, 518), 512, pe_scale=0.0)
    assert out.shape == (1, 512, 4)
    grid = out[0, :256, 0].reshape(16, 16)
    # align_corners=True samples input column j * 36 / 15: the ends map onto the ends
    torch.testing.assert_close(grid[0], torch.arange(16) * 36 / 15)
    torch.testing.assert_close(grid[:, 5], torch.full((16,), 5 * 36 / 15))


def test_encoding_is_added_before_the_resize_and_scaled_by_0_1():
    tokens = torch.zeros(1, 1, 16, 8)
    out = resample_teacher_tokens(tokens, (4, 4), (56, 56), 16, pe_scale=0.1)
    torch.testing.assert_close(out[0], 0.1 * uv_position_encoding(4, 4, 8, (56, 56)).reshape(16, 8))


def test_projector_has_the_reference_widths_and_init():
    p = AlignProjector(2048, 1024, use_vlm_norm=True)
    assert (p.fc1.in_features, p.fc1.out_features, p.fc2.out_features) == (2048, 2048, 2048)
    assert p.vlm_norm.normalized_shape == (2048,) and float(p.fc1.bias.detach().abs().sum()) == 0
    bound = math.sqrt(6 / (2048 + 2048))
    assert 0.95 * bound < float(p.fc2.weight.detach().abs().max()) <= bound * (1 + 1e-6)  # nn.Linear default: 0.022


def test_padding_images_and_padded_pixels_are_masked_out_of_the_loss():
    slot_valid = torch.tensor([[True, False]])
    pix = torch.ones(1, 4, 4, dtype=torch.bool)
    pix[:, :, :2] = False  # left half of slot 0 is padding
    mask = alignment_mask(slot_valid, [pix, torch.ones(1, 4, 4, dtype=torch.bool)], 2)
    assert mask.tolist() == [[False, True, False, True, False, False, False, False]]
    target = torch.randn(1, 8, 6)
    student = torch.randn(1, 8, 6)
    student[mask] = 3.0 * target[mask]  # aligned where it counts; anything elsewhere
    assert float(masked_cosine_alignment_loss(student, target, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(masked_cosine_alignment_loss(student, target, torch.zeros_like(mask))) == 0.0


def sf_policy(seed=0, **sf):
    torch.manual_seed(seed)
    cfg = tiny_config("pi0")
    args = dict(cfg.method_args, image_slots=2, spatial_forcing={**cfg.method_args["spatial_forcing"], "enabled": True,
                                                                 **sf})
    cfg = tiny_config("pi0", method_args=args)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def test_alignment_loss_falls_on_tiny_pi0_and_total_is_action_plus_half_align():
    policy = sf_policy()
    batch = synthetic_batch(policy.config, 4, seed=2)
    history = fit_batch(policy, batch, 40, lr=2e-3)
    assert history[-1]["align_loss"] < 0.5 * history[0]["align_loss"], (history[0], history[-1])
    h = history[-1]
    assert h["loss"] == pytest.approx(h["action_loss"] + 0.5 * h["align_loss"], rel=1e-5)


def test_the_empty_slot_does_not_change_the_alignment_loss():
    """Slot 1 is padding (black, masked): the loss is the same whatever the student's tokens there are."""
    policy = sf_policy().eval()
    batch = synthetic_batch(policy.config, 2, seed=4)
    from vla_ros.policies.pi0.alignment_pi0 import alignment_loss

    with torch.no_grad():
        feats = policy.encode({**batch, "noise": torch.zeros(2, 4, 16), "time": torch.full((2,), 0.5)}, (), True)
        base = alignment_loss(policy, feats)
        n = policy.n_image_tokens
        feats["hidden"] = feats["hidden"].clone()
        feats["hidden"][:, n:2 * n] = torch.randn_like(feats["hidden"][:, n:2 * n]) * 100
        torch.testing.assert_close(alignment_loss(policy, feats), base)


def test_teacher_is_never_saved_nor_run_at_inference(tmp_path):
    policy = sf_policy()
    fit_batch(policy, synthetic_batch(policy.config, 2, seed=0), 1)
    assert policy._teacher and not any(k.startswith("_teacher") or "teacher" in k for k in policy.state_dict())
    save_checkpoint(policy, tmp_path / "ck")
    loaded = load_policy(tmp_path / "ck")
    assert not loaded._teacher
    loaded.predict_actions(synthetic_batch(loaded.config, 1, seed=0), ())
    assert not loaded._teacher  # inference built no teacher
    off = {k: v for k, v in loaded.state_dict().items() if not k.startswith("align_projector.")}
    assert set(off) == set(make_policy(tiny_config("pi0", method_args=dict(
        tiny_config("pi0").method_args, image_slots=2)), None).state_dict())


def test_bundled_small_baseline_checkpoint_keeps_its_old_target():
    policy = load_policy("vla_ros/checkpoints/sim_spatial_forcing")
    assert policy.args.legacy_target is True
    assert policy.projector[1].out_features == 2 * policy.vlm.width
    fresh = make_policy(tiny_config("spatial_forcing"), None)
    assert fresh.args.legacy_target is False
    assert fresh.projector[1].out_features == 2 * fresh.args.teacher.embed_dim  # the reference's widths
    loss, metrics = fresh.compute_loss(synthetic_batch(fresh.config, 2, seed=0))
    assert np.isfinite(metrics["align_loss"])
