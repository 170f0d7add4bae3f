"""Robot adapters, one class per robot: found by name, each config's own typed `adapter.settings` (bad keys and
values named, the old flat keys pointed to their new place), the chunk topic cross-checked between the policy
and executor sections, config leaves described with units and ranges, and a fourth robot added as one module
drives the bag writer and the recorded-actions decoder with no other change."""
from dataclasses import dataclass

import numpy as np
import pytest

from vla_ros.adapters import registry
from vla_ros.adapters.base import DriverMessage, Recorded, RobotAdapter, header_time_s, pose_stamped_fields
from vla_ros.core.config import ConfigError, bounded, check_bounds, field_infos, from_dict, to_dict
from vla_ros.runtime_config import CONFIG_DIR, RuntimeConfig, load_runtime_config


def test_registry_finds_each_robot_by_name():
    assert {"franka", "widowx", "piper"} <= set(registry.robot_names())
    for name in ("franka", "widowx", "piper"):
        assert registry.adapter_class(name).name == name
    with pytest.raises(ConfigError, match=r"robot: expected one of .*'ur5'"):
        registry.adapter_class("ur5")


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_robot_yaml_loads_with_its_adapters_settings(path):
    cfg = load_runtime_config(str(path))
    adapter = registry.make_adapter(cfg.adapter)
    assert isinstance(cfg.adapter.settings, adapter.Settings)
    assert [t for t, _ in adapter.publications()][:len(cfg.adapter.command_topics)] == cfg.adapter.command_topics
    assert from_dict(RuntimeConfig, to_dict(cfg)) == cfg  # the settings survive a YAML round trip


@pytest.mark.parametrize("robot,section,message", [
    ("widowx", {"grup": "arm"}, r"adapter\.settings\.grup: unknown key for WidowXSettings \(did you mean 'group'"),
    ("agilex", {"angle_unit": "grad"}, r"adapter\.settings\.angle_unit: expected one of \['rad', 'deg'\]"),
    ("franka", {"close_below": 0.9}, r"adapter\.settings\.close_below: need 0 <= close_below < open_above"),
    ("franka", {"grasp_force_n": -1.0}, r"adapter\.settings\.grasp_force_n: must be in \[0.0, 200.0\]"),
    ("agilex", 3, r"adapter\.settings: expected a mapping of PiperSettings"),
    ("widowx", {"gripper_open": float("nan")}, r"adapter\.settings\.gripper_open: .*must be finite"),
    ("widowx", {"group": " "}, r"adapter\.settings\.group: .*group name is required"),
    ("franka", {"gripper_open_width_m": 0.0}, r"adapter\.settings\.gripper_open_width_m: must be in"),
    ("franka", {"gripper_speed_m_s": 0.0}, r"adapter\.settings\.gripper_speed_m_s: must be in"),
    ("agilex", {"gripper_open_width_m": 0.0}, r"adapter\.settings\.gripper_open_width_m: must be in"),
])
def test_bad_settings_are_named(robot, section, message):
    d = to_dict(load_runtime_config(robot))
    d["adapter"]["settings"] = {**d["adapter"]["settings"], **section} if isinstance(section, dict) else section
    with pytest.raises(ConfigError, match=message):
        from_dict(RuntimeConfig, d)


@pytest.mark.parametrize("robot,old,new", [("widowx", "widowx_group", "settings.group"),
                                           ("franka", "grasp_force_n", "settings.grasp_force_n"),
                                           ("agilex", "angle_unit", "settings.angle_unit")])
def test_old_flat_keys_say_where_they_moved(robot, old, new):
    d = to_dict(load_runtime_config(robot))
    d["adapter"][old] = "x"
    with pytest.raises(ConfigError, match=rf"adapter\.{old}: unknown key .*moved to adapter\.{new}"):
        from_dict(RuntimeConfig, d)


def test_chunk_topic_mismatch_is_named():
    d = to_dict(load_runtime_config("franka"))
    d["executor"]["chunk_topic"] = "/other/action_chunk"
    with pytest.raises(ConfigError, match=r"executor\.chunk_topic: must equal policy\.chunk_topic '/vla/action_chunk'"):
        from_dict(RuntimeConfig, d)
    d["policy"]["chunk_topic"] = "/other/action_chunk"  # both moved together: fine
    assert from_dict(RuntimeConfig, d).executor.chunk_topic == "/other/action_chunk"


@pytest.mark.parametrize("robot,topics", [("franka", []), ("franka", ["/g1", "/g2"]), ("widowx", [])])
def test_gripper_topics_must_fit_the_robot_and_its_arms(robot, topics):
    """Franka: one gripper action namespace per arm (else an arm's gripper is never commanded); WidowX: one."""
    d = to_dict(load_runtime_config(robot))
    d["adapter"]["gripper_topics"] = topics
    with pytest.raises(ConfigError, match=rf"adapter\.gripper_topics: .*{robot} with 1 arm\(s\) needs 1"):
        from_dict(RuntimeConfig, d)


def test_config_leaves_carry_units_ranges_and_choices():
    cfg = load_runtime_config("widowx")
    infos = {i.name: i for i in field_infos(cfg.executor, "executor") + field_infos(cfg.adapter, "adapter")}
    speed = infos["executor.safety.max_speed_m_s"]
    assert speed.value == cfg.executor.safety.max_speed_m_s and (speed.lo, speed.hi) == (1e-6, 100.0)
    assert speed.description == "m/s; range [1e-06, 100.0]"
    assert infos["executor.rate_hz"].description == "Hz; range [0.5, 2000.0]"
    assert infos["executor.mode"].description == "no unit; one of ['ensemble', 'splice']"
    assert infos["executor.safety.workspace_max_m"].description.startswith("m")
    assert infos["adapter.settings.group"].value == "arm"
    assert infos["adapter.settings.close_below"].description == "fraction of the opening; range [0.0, 1.0]"


@dataclass
class RaisedSettings:
    raise_m: float = bounded(0.0, -0.5, 0.5)

    def __post_init__(self):
        check_bounds(self)


class RaisedArm(RobotAdapter):
    """A fourth robot as its own module would define it: PoseStamped targets raised by `settings.raise_m` (the
    driver's tool offset), one per arm, no gripper in its commands."""

    Settings = RaisedSettings

    def publications(self):
        return [(t, "geometry_msgs/msg/PoseStamped") for t in self.cfg.command_topics]

    def encode(self, target, stamp_s, frame_id):
        up = np.array([0.0, 0.0, self.settings.raise_m])
        return [DriverMessage(t, "geometry_msgs/msg/PoseStamped",
                              pose_stamped_fields(stamp_s, frame_id, target.position_m[a] + up, target.quat_xyzw[a]))
                for a, t in enumerate(self.cfg.command_topics)]

    def decode(self, topic, arm, msg, t_ns):
        p, o = msg.pose.position, msg.pose.orientation
        return Recorded(header_time_s(msg, t_ns),
                        np.array([p.x, p.y, p.z - self.settings.raise_m, o.x, o.y, o.z, o.w]))


@pytest.fixture
def raised_arm(monkeypatch):
    registry.robot_names()  # the built-in robots first, then a registry this test may extend
    monkeypatch.setattr(registry, "_ADAPTERS", dict(registry._ADAPTERS))
    registry.register("raised_arm")(RaisedArm)
    return RaisedArm


def test_a_fourth_robot_is_one_adapter_class(raised_arm, tmp_path):
    from vla_ros.data.bag_writer import T0_S, sweep_target, write_robot_bag
    from vla_ros.data.bags import Bag
    from vla_ros.data.recorded_actions import actions_in_bag

    d = to_dict(load_runtime_config("franka"))
    d["adapter"] = {"robot": "raised_arm", "command_topics": ["/raised/target"], "settings": {"raise_m": 0.1}}
    cfg = from_dict(RuntimeConfig, d)
    assert isinstance(cfg.adapter.settings, RaisedSettings)
    with pytest.raises(ConfigError, match=r"adapter\.settings\.raise_m: must be in \[-0.5, 0.5\]"):
        from_dict(RuntimeConfig, {**d, "adapter": {**d["adapter"], "settings": {"raise_m": 2.0}}})
    bag = write_robot_bag(tmp_path / "rec", cfg, seconds=1.0)
    with Bag(bag) as b:
        raw = [m for _, _, m in b.messages(["/raised/target"])]
        actions = actions_in_bag(b, cfg)
        for topic, t_ns, msg in b.messages(actions.topics()):
            actions.feed(topic, t_ns, msg)
    assert raw and actions.source == "command" and actions.count() == len(raw)
    times, poses = actions.series(0)
    want = np.array([sweep_target(cfg, t - T0_S, 1.0).position_m[0] for t in times])
    np.testing.assert_allclose([m.pose.position.z for m in raw], want[:, 2] + 0.1, atol=1e-9)
    np.testing.assert_allclose(poses[:, :3], want, atol=1e-6)
