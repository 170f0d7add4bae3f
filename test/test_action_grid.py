"""Adaptive Action Grids: equal-probability edges, round trip within half a bin, exact linear adaptation."""
import json

import numpy as np
import pytest
from scipy.stats import norm

from vla_ros.policies.tokenizers.action_grid import (
    RANGES,
    ActionGrid,
    GridSpec,
    equal_probability_edges,
    from_spherical,
    to_spherical,
)


def test_reference_vocabulary_size():
    assert ActionGrid().vocab_size == 16 * 32 * 8 + 16 ** 3 + 2 == 8194


def test_edges_are_the_analytic_gaussian_quantiles():
    mu, sigma, lo, hi, n = 0.1, 0.3, -1.0, 1.0, 16
    edges = equal_probability_edges(n, lo, hi, mu, sigma)
    p = np.linspace(norm.cdf(lo, mu, sigma), norm.cdf(hi, mu, sigma), n + 1)
    np.testing.assert_allclose(edges[1:-1], norm.ppf(p[1:-1], mu, sigma), rtol=1e-12)
    assert edges[0] == lo and edges[-1] == hi
    probs = np.diff(norm.cdf(edges, mu, sigma))
    np.testing.assert_allclose(probs, probs[0])
    # sigma is clamped from below; no fit -> uniform
    np.testing.assert_allclose(equal_probability_edges(4, -1, 1, 0.0, 1e-9, sigma_min=0.5),
                               equal_probability_edges(4, -1, 1, 0.0, 0.5))
    np.testing.assert_allclose(equal_probability_edges(4, -1, 1), [-1, -0.5, 0, 0.5, 1])


def test_spherical_round_trip():
    xyz = np.random.default_rng(0).uniform(-1, 1, (100, 3))
    np.testing.assert_allclose(from_spherical(to_spherical(xyz)), xyz, atol=1e-12)


@pytest.mark.parametrize("fitted", [False, True])
def test_tokenize_detokenize_error_within_half_a_bin(fitted):
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.normal(0, 0.3, (500, 6)).clip(-1, 1), rng.integers(0, 2, (500, 1))], 1)
    grid = ActionGrid.fit(a) if fitted else ActionGrid()
    tokens = grid.encode(a)
    assert tokens.shape == (500, 3)
    assert (tokens[:, 0] < grid.n_translation).all() and (tokens[:, 2] >= grid.vocab_size - 2).all()
    back = grid.decode(tokens)
    s_in, s_out = to_spherical(a[:, :3]), to_spherical(back[:, :3])
    for i, var in enumerate(("theta", "phi", "r")):
        e = grid.edges[var]
        idx = np.clip(np.searchsorted(e, s_in[:, i], side="right") - 1, 0, len(e) - 2)
        half = (e[idx + 1] - e[idx]) / 2
        assert np.all(np.abs(s_out[:, i] - s_in[:, i]) <= half + 1e-9), var
    for i, var in enumerate(("roll", "pitch", "yaw")):
        e = grid.edges[var]
        idx = np.clip(np.searchsorted(e, a[:, 3 + i], side="right") - 1, 0, len(e) - 2)
        assert np.all(np.abs(back[:, 3 + i] - a[:, 3 + i]) <= (e[idx + 1] - e[idx]) / 2 + 1e-9), var
    np.testing.assert_array_equal(back[:, 6], a[:, 6])


def test_adaptation_reproduces_a_linear_field_exactly():
    old = ActionGrid(GridSpec(bins={"theta": 4, "phi": 6, "r": 3, "roll": 5, "pitch": 4, "yaw": 3}))
    rng = np.random.default_rng(2)
    a = np.concatenate([rng.normal(0.2, 0.2, (300, 6)).clip(-1, 1), rng.integers(0, 2, (300, 1))], 1)
    new = ActionGrid.fit(a, GridSpec(bins={"theta": 5, "phi": 7, "r": 4, "roll": 6, "pitch": 5, "yaw": 4}))
    D = 3
    W = rng.normal(size=(3, D))
    c = rng.normal(size=D)

    def field(grid, names, offset):
        mesh = np.meshgrid(*[grid.centres(v) for v in names], indexing="ij")
        pts = np.stack([m.ravel() for m in mesh], 1)
        return offset, pts @ W + c

    emb_old = np.zeros((old.vocab_size, D))
    for names, off in ((("theta", "phi", "r"), 0), (("roll", "pitch", "yaw"), old.n_translation)):
        _, vals = field(old, names, off)
        emb_old[off:off + len(vals)] = vals
    emb_new = new.adapt_embeddings(old, emb_old)
    for names, off in ((("theta", "phi", "r"), 0), (("roll", "pitch", "yaw"), new.n_translation)):
        _, vals = field(new, names, off)
        np.testing.assert_allclose(emb_new[off:off + len(vals)], vals, atol=1e-9)
    assert set(RANGES) >= set(old.spec.bins)


def test_save_load(tmp_path):
    a = np.random.default_rng(3).normal(0, 0.3, (50, 7)).clip(-1, 1)
    g = ActionGrid.fit(a)
    g.save(tmp_path / "tokenizer.json")
    h = ActionGrid.load(tmp_path / "tokenizer.json")
    np.testing.assert_array_equal(g.encode(a), h.encode(a))


# --- the tokenizer inside the SpatialVLA policy -----------------------------------------------------------
def spatialvla(seed=0, **kw):
    import torch

    from vla_ros.policies.factory import make_policy, tiny_config
    from vla_ros.training.synthetic import synthetic_norm_stats

    torch.manual_seed(seed)
    cfg = tiny_config("spatialvla_legacy", **kw)
    return make_policy(cfg, synthetic_norm_stats(cfg))


def test_codec_normalizes_with_q01_q99_and_round_trips_within_half_a_bin():
    import torch

    from vla_ros.training.synthetic import synthetic_batch

    policy = spatialvla()
    s = policy.norm_stats.stats["action"]
    codec = policy.codec
    # q01 and q99 map to the ends of the normalized range: theta/phi of (-1, -1, -1) and r = sqrt(3)
    lo = torch.tensor(np.r_[s.q01[:6], 0.0], dtype=torch.float32).reshape(1, 1, 1, 7)
    arm, _ = codec.actions.normalize(lo)
    np.testing.assert_allclose(arm.numpy().ravel(), -1.0, atol=1e-5)
    batch = synthetic_batch(policy.config, 16, seed=3)
    tokens = codec.encode(batch["action"])
    assert tokens.shape == (16, 4 * 1 * 3)
    back = codec.decode(tokens, 4, 1)
    a_n, _ = codec.actions.normalize(batch["action"])
    b_n, _ = codec.actions.normalize(back)
    g = policy.grid
    for i, var in enumerate(("roll", "pitch", "yaw")):
        widths = np.diff(g.edges[var])
        assert np.all((b_n[..., 3 + i] - a_n[..., 3 + i]).abs().numpy() <= widths.max() / 2 + 1e-5)
    np.testing.assert_array_equal(back[..., 6].numpy(), batch["action"][..., 6].numpy())
    pad = torch.zeros(16, 4, dtype=torch.bool)
    pad[:, 3] = True
    assert (codec.encode(batch["action"], pad)[:, 9:] == -100).all()


def test_autoregressive_decoding_reproduces_a_memorised_chunk():
    import torch

    from vla_ros.training.synthetic import fit_batch, synthetic_batch

    small = {"theta": 4, "phi": 8, "r": 4, "roll": 4, "pitch": 4, "yaw": 4}  # 194 tokens: quick on a CPU
    policy = spatialvla(seed=1, horizon=2, method_args={"grid": {"bins": small}})
    assert policy.grid.vocab_size == 4 * 8 * 4 + 4 ** 3 + 2
    batch = synthetic_batch(policy.config, 1, seed=7)
    m = fit_batch(policy, batch, 40, lr=3e-3)[-1]
    assert m["token_acc"] == 1.0
    with torch.no_grad():
        pred = policy.predict_actions(batch, ("rgb", "depth"))
    torch.testing.assert_close(pred, policy.codec.decode(policy.codec.encode(batch["action"]), 2, 1))


def test_policy_adaptation_interpolates_embeddings_and_survives_a_checkpoint(tmp_path):
    from vla_ros.policies.checkpoint_io import CheckpointError, load_policy, save_checkpoint
    from vla_ros.training.synthetic import synthetic_batch

    policy = spatialvla()
    old_grid, old_emb = policy.grid, policy.token_embed.weight.detach().numpy().copy()
    new_actions = synthetic_batch(policy.config, 64, seed=9)["action"].reshape(-1, 7).numpy() * 0.5
    policy.adapt_tokenizer(new_actions)
    assert policy.grid.mismatch(old_grid)  # re-cut
    expected = policy.grid.adapt_embeddings(old_grid, old_emb[:old_grid.vocab_size])
    np.testing.assert_allclose(policy.token_embed.weight.detach().numpy()[:-1], expected, rtol=1e-6)
    save_checkpoint(policy, tmp_path)
    loaded = load_policy(tmp_path)
    assert not loaded.grid.mismatch(policy.grid)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["spec"]["gaussians"]["yaw"] = [0.0, 0.9]
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"tokenizer.json does not match method_args.grid.*yaw"):
        load_policy(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json: missing"):
        load_policy(tmp_path)


def test_adaptive_ensembler_known_weights():
    from vla_ros.policies.spatialvla_legacy.processing_spatialvla_legacy import AdaptiveEnsembler

    ens = AdaptiveEnsembler(alpha=0.0, history=4)
    first = np.arange(3 * 1 * 2, dtype=float).reshape(3, 1, 2) + 1
    np.testing.assert_array_equal(ens(10.0, 0.1, first), first)
    second = np.full((3, 1, 2), 10.0)
    out = ens(10.1, 0.1, second)  # one step later: first[j + 1] overlaps second[j] for j = 0, 1
    np.testing.assert_allclose(out[0], (second[0] + first[1]) / 2)
    np.testing.assert_allclose(out[1], (second[1] + first[2]) / 2)
    np.testing.assert_allclose(out[2], second[2])
    ens = AdaptiveEnsembler(alpha=1.0)
    ens(0.0, 1.0, np.array([[[1.0, 0.0]], [[0.0, 1.0]]]))
    out = ens(1.0, 1.0, np.array([[[1.0, 0.0]], [[1.0, 0.0]]]))
    w_same, w_orth = np.exp(1.0), np.exp(0.0)  # cos = 1 for the new one, 0 for the old prediction
    expected = (w_same * np.array([1.0, 0]) + w_orth * np.array([0, 1.0])) / (w_same + w_orth)
    np.testing.assert_allclose(out[0, 0], expected)
