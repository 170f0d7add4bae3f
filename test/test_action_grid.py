"""Adaptive Action Grids: equal-probability edges, round trip within half a bin, exact linear adaptation."""
import numpy as np
import pytest
from scipy.stats import norm

from vla_ros.policies.spatialvla.action_grid import (
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
