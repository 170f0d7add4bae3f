"""Checkpoint cards: one schema for every method's shipped cards, their `run` defaults are options the method's loader
knows, the former FALCON key `load_options` is still read (with a warning), and a malformed card is named."""
import warnings

import pytest
import yaml

from vla_ros.policies.cards import REQUIRED, CardError, available_cards, load_card, read_card


@pytest.mark.parametrize("method", ["falcon", "spatialvla"])
def test_every_shipped_card_follows_the_one_schema(method):
    from importlib import import_module

    known = {"falcon": lambda m: m.KNOWN_OPTIONS, "spatialvla": lambda m: set(m.RUN_OPTIONS)}[method](
        import_module(f"vla_ros.policies.{method}.loading_{method}"))
    names = available_cards(method)
    assert len(names) >= 3
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no shipped card uses a former key
            card = load_card(method, name)
        assert card.name == name and card.data["method"] == method
        assert set(REQUIRED) <= set(card.data) and "load_options" not in card.data
        assert set(card.data["run"]) <= set(known), (name, set(card.data["run"]) - set(known))
        assert card.data["action_reference"] in ("absolute", "delta_target", "delta_measured")
        assert 0 < float(card.data["dt_s"]) < 1


def test_the_former_falcon_key_is_read_as_run_and_feeds_the_loader(tmp_path):
    from vla_ros.policies.falcon.loading_falcon import _options

    data = yaml.safe_load(load_card("falcon", "falcon-fc-simpler-bridge").path.read_text())
    old = {k: v for k, v in data.items() if k != "run"}
    old["load_options"] = {**data["run"], "rotation": "rotvec"}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    with pytest.warns(DeprecationWarning, match="`load_options` is the former name of `run`"):
        card = read_card(path)
    assert card.data["run"]["rotation"] == "rotvec" and "load_options" not in card.data
    with pytest.warns(DeprecationWarning):
        opts = _options({"card": str(path), "camera": "side"})
    assert opts["rotation"] == "rotvec" and opts["camera"] == "side"  # the card's defaults, the options over them
    assert opts["dt_s"] == 0.2 and opts["action_reference"] == "delta_target" and opts["name"] == data["name"]
    path.write_text(yaml.safe_dump({**old, "run": data["run"]}))
    with pytest.raises(CardError, match="both `load_options`"):
        read_card(path)


def test_a_card_lacking_a_field_or_with_a_bad_run_is_named(tmp_path):
    data = yaml.safe_load(load_card("spatialvla", "spatialvla-4b-224-pt").path.read_text())
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if k != "gripper"}))
    with pytest.raises(CardError, match="lacks \\['gripper'\\]"):
        read_card(path)
    path.write_text(yaml.safe_dump({**data, "run": "bfloat16"}))
    with pytest.raises(CardError, match="run: expected a mapping"):
        read_card(path)
