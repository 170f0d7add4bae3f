"""NormStats: known-answer normalization in both modes, masks, numpy/torch parity, JSON round trip, named errors."""
import json

import numpy as np
import pytest
import torch

from vla_ros.core.normalize import NormStats, NormStatsError


def stats():
    x = np.stack([np.linspace(0, 100, 10001), np.linspace(-1, 1, 10001), np.tile([0.0, 1.0], 5001)[:10001]], 1)
    return NormStats.from_arrays({"action": x, "proprio": x[:, :2]}, {"action": np.array([True, True, False])}), x


def test_statistics_are_the_known_values():
    s, x = stats()
    a = s.stats["action"]
    np.testing.assert_allclose(a.mean[:2], [50.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(a.q01[:2], [1.0, -0.98], atol=1e-9)  # 1 % quantile of a uniform ramp
    np.testing.assert_allclose(a.q99[:2], [99.0, 0.98], atol=1e-9)
    np.testing.assert_allclose(a.std[0], x[:, 0].std())
    assert a.mask.tolist() == [True, True, False]


def test_q01_q99_maps_quantiles_to_minus_one_and_one_and_clips():
    s, _ = stats()
    y = s.normalize("action", np.array([[1.0, -0.98, 0.0], [99.0, 0.98, 1.0], [50.0, 0.0, 1.0], [150.0, 5.0, 0.0]]))
    np.testing.assert_allclose(y[0, :2], [-1, -1], atol=1e-6)
    np.testing.assert_allclose(y[1, :2], [1, 1], atol=1e-6)
    np.testing.assert_allclose(y[2, :2], [0, 0], atol=1e-6)
    np.testing.assert_allclose(y[3, :2], [1, 1])  # clipped
    np.testing.assert_array_equal(y[:, 2], [0, 1, 1, 0])  # masked dim passes through


def test_mean_std_mode_and_per_call_override():
    s, _ = stats()
    a = s.stats["action"]
    x = np.array([[a.mean[0] + 2 * a.std[0], a.mean[1] - a.std[1], 1.0]])
    np.testing.assert_allclose(s.normalize("action", x, mode="mean_std"), [[2.0, -1.0, 1.0]], atol=1e-5)
    ms = NormStats(s.stats, "mean_std")
    np.testing.assert_allclose(ms.normalize("action", x), s.normalize("action", x, mode="mean_std"))


@pytest.mark.parametrize("mode", ["q01_q99", "mean_std"])
def test_unnormalize_inverts_normalize_in_numpy_and_torch(mode):
    s, _ = stats()
    x = np.array([[10.0, 0.5, 1.0], [90.0, -0.5, 0.0]])
    back = s.unnormalize("action", s.normalize("action", x, mode), mode)
    np.testing.assert_allclose(back, x, atol=1e-4)
    t = torch.tensor(x, dtype=torch.float32)
    nt = s.normalize("action", t, mode)
    assert isinstance(nt, torch.Tensor) and nt.dtype == torch.float32
    np.testing.assert_allclose(nt.numpy(), s.normalize("action", x, mode), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.unnormalize("action", nt, mode).numpy(), x, atol=1e-3)


def test_json_round_trip_and_dim_check_on_load(tmp_path):
    s, x = stats()
    p = tmp_path / "norm_stats.json"
    s.save(p)
    t = NormStats.load(p, expected_dims={"action": 3, "proprio": 2})
    np.testing.assert_array_equal(t.normalize("action", x), s.normalize("action", x))
    with pytest.raises(NormStatsError, match=r"norm_stats.json: norm stats 'action' have 3 dims, expected 14"):
        NormStats.load(p, expected_dims={"action": 14})
    with pytest.raises(NormStatsError, match=r"no key 'state'"):
        NormStats.load(p, expected_dims={"state": 3})


def test_bad_files_and_data_are_named(tmp_path):
    s, _ = stats()
    with pytest.raises(NormStatsError, match="not found"):
        NormStats.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(NormStatsError, match="not valid JSON"):
        NormStats.load(tmp_path / "bad.json")
    d = s.to_json()
    del d["stats"]["action"]["q99"]
    (tmp_path / "m.json").write_text(json.dumps(d))
    with pytest.raises(NormStatsError, match=r"'action': missing field 'q99'"):
        NormStats.load(tmp_path / "m.json")
    d = s.to_json()
    d["stats"]["proprio"]["std"] = [1.0]
    (tmp_path / "s.json").write_text(json.dumps(d))
    with pytest.raises(NormStatsError, match=r"'proprio': fields disagree"):
        NormStats.load(tmp_path / "s.json")
    with pytest.raises(NormStatsError, match="'action' have 3 dims but the data has 2"):
        s.normalize("action", np.zeros((4, 2)))
    with pytest.raises(NormStatsError, match="NaN"):
        NormStats.from_arrays({"action": np.array([[np.nan]])})
    with pytest.raises(NormStatsError, match="mask has shape"):
        NormStats.from_arrays({"action": np.zeros((3, 2))}, {"action": np.ones(3, bool)})


def test_a_near_constant_dim_is_not_stretched_over_the_unit_range():
    from vla_ros.core.normalize import ACTION_MIN_RANGE, action_proprio_stats

    rng = np.random.default_rng(0)
    actions = np.zeros((1000, 7))
    actions[:, 0] = rng.uniform(-0.1, 0.1, 1000)  # x moves
    actions[:, 3] = rng.normal(0, 1e-4, 1000)  # a tool that stays pointing down: rotation noise only
    actions[:, 6] = rng.integers(0, 2, 1000)
    ns = action_proprio_stats(actions, rng.normal(size=(1000, 3)))
    a = ns.stats["action"]
    assert a.q99[3] - a.q01[3] == pytest.approx(ACTION_MIN_RANGE) and abs((a.q99[3] + a.q01[3]) / 2) < 1e-4
    assert a.q99[0] - a.q01[0] == pytest.approx(0.196, abs=0.01)  # a real range is kept
    norm = ns.normalize("action", actions)
    assert np.abs(norm[:, 3]).max() < 0.1 and np.abs(norm[:, 0]).max() == pytest.approx(1.0, abs=1e-6)
    assert not a.mask[6] and np.array_equal(norm[:, 6], actions[:, 6])  # the gripper stays in [0, 1]
