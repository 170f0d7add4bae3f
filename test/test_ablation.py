"""The ablation's statistics and cache: McNemar's exact test on known discordant counts, rows paired only on the
same episodes, and a cached row reused only when its weights, modalities, episodes and seed are unchanged."""
import pytest

from vla_ros.sim.ablation import ROWS, Row, _cached, mcnemar_exact, paired_table


def test_mcnemar_exact_known_answers():
    assert mcnemar_exact([True] * 5 + [False] * 5, [False] * 5 + [False] * 5) == \
        {"only_this": 5, "only_other": 0, "p_value": pytest.approx(2 / 32)}
    assert mcnemar_exact([True, False], [True, False])["p_value"] == 1.0  # no discordant pair
    # 8 vs 2 discordant: 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * 56 / 1024
    a = [True] * 8 + [False] * 2 + [True] * 3
    b = [False] * 8 + [True] * 2 + [True] * 3
    assert mcnemar_exact(a, b)["p_value"] == pytest.approx(112 / 1024)
    with pytest.raises(ValueError, match="same episodes"):
        mcnemar_exact([True], [True, False])


def _result(label, successes, seeds=(1, 2, 3)):
    eps = [{"task": "t", "seed": s, "success": ok} for s, ok in zip(seeds, successes)]
    return {"row": label, "episodes": eps}


def test_rows_are_paired_only_on_the_same_seeds():
    spatial = next(r for r in ROWS if r.against)
    other = spatial.against
    table = paired_table([_result(spatial.label, [True, True, False]), _result(other, [False, True, False])])
    assert f"| {spatial.label} | {other} | 1 | 0 | 1.000 |" in table
    assert paired_table([_result(spatial.label, [True] * 3), _result(other, [True] * 3, seeds=(4, 5, 6))]) == ""


def test_a_cached_row_is_reused_only_when_nothing_changed():
    from vla_ros.sim.ablation import EVAL_VERSION, markdown_table, row_key

    row = Row("r", "sim_x", "rgb")
    key = row_key(row, "abc", "cfg1", ["t"], 20, 7)
    old = [{"row": "r", **key}]
    assert _cached(old, "r", key) is old[0]
    for changed in (row_key(row, "abd", "cfg1", ["t"], 20, 7),  # retrained
                    row_key(row, "abc", "cfg2", ["t"], 20, 7),  # executor / safety settings changed
                    row_key(row, "abc", "cfg1", ["t", "u"], 20, 7),  # another task list
                    row_key(row, "abc", "cfg1", ["t"], 50, 7),  # more episodes
                    row_key(Row("r", "sim_x", "rgbd"), "abc", "cfg1", ["t"], 20, 7)):
        assert _cached(old, "r", changed) is None
    assert _cached([{**old[0], "eval_version": EVAL_VERSION - 1}], "r", key) is None  # the simulator code changed
    cell = {"successes": 1, "episodes": 2, "success_rate": 0.5, "ci95": [0.1, 0.9]}
    stale = {"row": "r", "per_task": {"t": cell}, "overall": cell, "evaluated_at": "fbf61e2"}
    table = markdown_table([stale, {**stale, "row": "s", "eval_version": EVAL_VERSION}], ["t", "u"])
    assert "| r | 1/2 (50%, [10, 90]) | - | 1/2 (50%, [10, 90]) | earlier code (fbf61e2) |" in table
    assert "| this version |" in table


def test_convergence_counts_the_steps_to_the_plain_runs_final_loss():
    from vla_ros.sim.curves import convergence

    plain = {"step": [250, 500, 750, 1000], "val_action_loss": [0.4, 0.3, 0.25, 0.2]}
    forced = {"step": [250, 500, 750, 1000], "val_action_loss": [0.35, 0.19, 0.15, 0.1]}
    assert convergence(plain, forced) == {"plain_final_loss": 0.2, "plain_steps": 1000, "forced_steps": 500,
                                          "speedup": 2.0}
    assert convergence(plain, {"step": [1000], "val_action_loss": [0.3]})["speedup"] is None


def test_the_camera_shift_column_is_cached_apart_and_outside_the_training_range():
    """A shifted-camera result never stands in for the tasks' camera (nor the reverse); the shifted range lies
    outside the widest range the bundled policies were trained on; the table gets the column."""
    from vla_ros.sim.ablation import CAMERAS, markdown_table, row_key
    from vla_ros.sim.tasks import WIDE_CAMERA

    row = Row("r", "sim_x", "rgb")
    tasks_key, shifted_key = row_key(row, "abc", "cfg", ["t"], 20, 7), row_key(row, "abc", "cfg", ["t"], 20, 7,
                                                                                "shifted")
    assert "camera" not in tasks_key  # keys of tables made before the column still match
    shifted = [{"row": "r", **shifted_key}]
    assert _cached(shifted, "r", shifted_key) is shifted[0]
    assert _cached(shifted, "r", tasks_key) is None
    assert _cached([{"row": "r", **tasks_key}], "r", shifted_key) is None
    lo, hi = CAMERAS["shifted"].azimuth_deg
    assert lo > WIDE_CAMERA.azimuth_deg[1] and hi > lo
    cell = {"successes": 1, "episodes": 2, "success_rate": 0.5, "ci95": [0.1, 0.9]}
    zero = {**cell, "successes": 0, "success_rate": 0.0}
    result = {"row": "r", "per_task": {"t": cell}, "overall": cell}
    table = markdown_table([result], ["t"], {"r": {**result, "overall": zero}})
    assert "| all | all, camera shifted |" in table
    assert "| r | 1/2 (50%, [10, 90]) | 1/2 (50%, [10, 90]) | 0/2 (0%, [10, 90]) |" in table


@pytest.mark.slow
def test_one_row_runs_under_both_cameras(tmp_path):
    """run_ablation end to end on one bundled row, one episode of one task under each camera: two results, the
    shifted one keyed apart, and a rerun takes both from the cache."""
    from vla_ros.sim.ablation import run_ablation

    row = next(r for r in ROWS if r.checkpoint == "sim_baseline")
    res = run_ablation(1, ["pick_by_distance"], tmp_path, rows=[row], progress=False, cameras=("tasks", "shifted"))
    assert len(res["rows"]) == 1 and len(res["shifted"]) == 1
    assert res["shifted"][0]["camera"] == "shifted" and "camera" not in res["rows"][0]
    again = run_ablation(1, ["pick_by_distance"], tmp_path, rows=[row], progress=False, cameras=("tasks", "shifted"))
    assert again["shifted"][0]["wall_s"] == res["shifted"][0]["wall_s"]  # cached, not run again
    assert "camera shifted" in (tmp_path / "ablation.md").read_text()
