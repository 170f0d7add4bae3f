"""core.config.override: a copy of a config with some (nested) fields changed, checked like from_dict."""
import pytest

from vla_ros.core.config import ConfigError, from_dict, override, to_dict
from vla_ros.runtime_config import RuntimeConfig, load_runtime_config


def test_nested_override_changes_only_the_named_fields_and_matches_a_round_trip():
    cfg = load_runtime_config("franka")
    out = override(cfg, {"policy": {"modalities": "rgb", "checkpoint": "/x"}, "executor": {"rate_hz": 7.0}})
    assert (out.policy.modalities, out.policy.checkpoint, out.executor.rate_hz) == ("rgb", "/x", 7.0)
    round_trip = from_dict(RuntimeConfig, {**to_dict(cfg), "policy": {**to_dict(cfg.policy), "modalities": "rgb",
                                                                        "checkpoint": "/x"},
                                           "executor": {**to_dict(cfg.executor), "rate_hz": 7.0}})
    assert to_dict(out) == to_dict(round_trip)
    assert to_dict(cfg) == to_dict(load_runtime_config("franka"))  # the original is untouched


def test_the_copy_shares_nothing_with_the_original():
    cfg = load_runtime_config("franka")
    out = override(cfg, {"executor": {"rate_hz": 7.0}})
    out.executor.arm_names.append("extra")
    out.observation.joint_names.append("extra")
    assert "extra" not in cfg.executor.arm_names and "extra" not in cfg.observation.joint_names


def test_a_bad_nested_key_is_named_with_its_path():
    cfg = load_runtime_config("franka")
    with pytest.raises(ConfigError, match=r"^policy\.modalitis: unknown key .*did you mean 'modalities'"):
        override(cfg, {"policy": {"modalitis": "rgb"}})
    with pytest.raises(ConfigError, match=r"^executor\.safety\.max_step_m: expected float"):
        override(cfg, {"executor": {"safety": {"max_step_m": "fast"}}})
    with pytest.raises(ConfigError, match=r"^policy\.checkpoint: expected str"):
        override(cfg.policy, {"checkpoint": 3}, "policy")


def test_post_init_runs_again_on_every_changed_level():
    cfg = load_runtime_config("franka")
    with pytest.raises(ConfigError, match=r"^executor\.rate_hz: must be in"):
        override(cfg, {"executor": {"rate_hz": 0.0}})
    with pytest.raises(ConfigError, match=r"^executor\.base_frame: must equal observation\.base_frame"):
        override(cfg, {"executor": {"base_frame": "elsewhere"}})  # RuntimeConfig's own cross-field check


def test_a_non_mapping_for_a_nested_config_is_named():
    cfg = load_runtime_config("franka")
    with pytest.raises(ConfigError, match=r"^executor: expected a mapping"):
        override(cfg, {"executor": 3})
    with pytest.raises(ConfigError, match=r"^RuntimeConfig: expected a mapping of changes"):
        override(cfg, ["executor"])


def test_overriding_the_robot_builds_its_own_settings():
    """Settings belong to a robot: switching robot starts them from the new robot's defaults (plus the changes),
    instead of merging them into the old robot's section."""
    from vla_ros.adapters.widowx import WidowXSettings

    adapter = load_runtime_config("franka").adapter
    moved = override(adapter, {"robot": "widowx", "settings": {"group": "arm2"}})
    assert isinstance(moved.settings, WidowXSettings) and moved.settings.group == "arm2"
    assert moved.command_topics == adapter.command_topics  # the rest is kept
    same = override(adapter, {"robot": "franka", "settings": {"grasp_force_n": 30.0}})
    assert same.settings.grasp_force_n == 30.0 and same.settings.gripper_open_width_m == \
        adapter.settings.gripper_open_width_m  # the same robot: a merge, as before


def test_torch_threads_leave_a_core_by_default_and_a_bad_value_is_named():
    import os

    from vla_ros.runtime_config import PolicyNodeConfig

    cores = len(os.sched_getaffinity(0))
    assert from_dict(PolicyNodeConfig, {}).cpu_threads() == max(1, cores - 1)
    assert from_dict(PolicyNodeConfig, {"torch_threads": 3}).cpu_threads() == 3
    with pytest.raises(ConfigError, match="torch_threads"):
        from_dict(PolicyNodeConfig, {"torch_threads": -1})
