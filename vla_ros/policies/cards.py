"""Checkpoint cards: one YAML per released checkpoint, shipped in `vla_ros/policies/<method>/cards/<name>.yaml`.

A card says what the checkpoint's numbers mean on a robot: the dataset key of its statistics, the action's
reference, frame, units and rotation convention, the gripper convention, the image size and crop, the depth
source, the intrinsics key, the robot config it suits, and `run` (load options the reference evaluation used).
Loaders read `dataset_key` and `run` as defaults; `vla-ros checkpoint inspect` prints the card.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

REQUIRED = ("name", "method", "hf_repo", "dataset_key", "action", "gripper", "image", "depth_source",
            "intrinsics_key", "robot_config")


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
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CardError(f"{p}: card lacks {missing}")
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
