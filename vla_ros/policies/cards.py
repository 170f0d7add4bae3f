"""Checkpoint cards: one YAML per released checkpoint, shipped in `vla_ros/policies/<method>/cards/<name>.yaml`.

One schema for every method. A card says what the checkpoint's numbers mean on a robot:
- name, method; hf_repo (where the weights are; `hf_path`: the folder in it, when the repo holds several);
- dataset_key (the statistics key, null where none applies), action (reference, frame, units, rotation
  convention), gripper (its convention), image (size, crop, normalisation), depth_source, intrinsics_key,
  robot_config (the vla_ros robot YAML it suits, or "none shipped"), action_reference and dt_s (the chunk's);
- run: the load options the reference evaluation used (a mapping), the loader's defaults, which
  `policy.load_options` override;
- optional: needs (files besides the weights), head, executor_hint (the executor setting closest to the
  reference rollout).
Loaders read `dataset_key`, `action_reference`, `dt_s` and `run` as defaults; `vla-ros checkpoint inspect`
prints the card. FALCON cards once named `run` `load_options`: a card with that key is still read (with a
DeprecationWarning naming the file); one with both is refused.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

REQUIRED = ("name", "method", "hf_repo", "dataset_key", "action", "gripper", "image", "depth_source",
            "intrinsics_key", "robot_config", "action_reference", "dt_s", "run")
OLD_NAMES = {"load_options": "run"}  # a former key -> its name in this schema


class CardError(ValueError):
    """A card is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Card:
    name: str
    path: Path
    data: dict

    def to_text(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False).rstrip()


def cards_dir(method: str) -> Path:
    return Path(__file__).parent / method / "cards"


def available_cards(method: str) -> list[str]:
    d = cards_dir(method)
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def read_card(path: str | Path) -> Card:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise CardError(f"{p}: card not found") from None
    except yaml.YAMLError as exc:
        raise CardError(f"{p}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise CardError(f"{p}: expected a mapping")
    for old, new in OLD_NAMES.items():
        if old in data:
            if new in data:
                raise CardError(f"{p}: both `{old}` (the former name) and `{new}`; keep `{new}`")
            warnings.warn(f"{p}: `{old}` is the former name of `{new}`; rename it", DeprecationWarning, stacklevel=2)
            data = {(new if k == old else k): v for k, v in data.items()}
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CardError(f"{p}: card lacks {missing} (the card schema: vla_ros/policies/cards.py)")
    if not isinstance(data["run"], dict):
        raise CardError(f"{p}: run: expected a mapping of load options, got {data['run']!r}")
    return Card(str(data["name"]), p, data)


def load_card(method: str, name_or_path: str) -> Card:
    """A shipped card by name (e.g. "spatialvla-4b-224-pt") or a card file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return read_card(p)
    shipped = cards_dir(method) / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise CardError(f"no {method} card {name_or_path!r}; shipped: {available_cards(method)}")
    return read_card(shipped)


def match_card(method: str, folder: str | Path) -> Card | None:
    """The shipped card whose hf_repo's name is the folder's name (the usual `huggingface-cli download` layout)."""
    name = Path(folder).resolve().name
    for card_name in available_cards(method):
        card = load_card(method, card_name)
        if str(card.data["hf_repo"]).split("/")[-1] == name:
            return card
    return None
