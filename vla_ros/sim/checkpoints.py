"""The checkpoints this project trained in simulation, shipped inside the package (vla_ros/checkpoints/), and
the ESM they were trained with. `scripts/train_sim_checkpoints.sh` reproduces them."""
from __future__ import annotations

from pathlib import Path

from vla_ros.core.constants import METHODS

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"


def bundled_checkpoint(method: str) -> str:
    """Folder of the bundled sim checkpoint of `method` (FileNotFoundError naming what is missing)."""
    if method not in METHODS:
        raise FileNotFoundError(f"no bundled checkpoint for method {method!r}; bundled: {list(METHODS)}")
    d = ROOT / f"sim_{method}"
    if not (d / "model.safetensors").is_file():
        raise FileNotFoundError(f"{d}: bundled checkpoint missing (reproduce it with "
                                "scripts/train_sim_checkpoints.sh, or pass --checkpoint)")
    return str(d)


def bundled_esm() -> str:
    return str(ROOT / "sim_esm")
