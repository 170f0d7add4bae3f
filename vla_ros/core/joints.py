"""JointState (names, positions) mapped by name into a robot's configured joint order."""
from __future__ import annotations

import numpy as np


class JointStateError(ValueError):
    """Missing, duplicate or non-finite joints; the message names them."""


def select_joints(values: np.ndarray, names: list[str], wanted: list[str]) -> np.ndarray:
    """The `wanted` joints' values (last axis) out of `values` named `names`; JointStateError names the missing."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise JointStateError(f"joints {missing} are not among {list(names)}")
    return np.asarray(values)[..., [index[n] for n in wanted]]


class JointMapper:
    """Maps JointState messages into `joint_names` order; other joints in the message are ignored."""

    def __init__(self, joint_names: list[str]):
        if len(set(joint_names)) != len(joint_names):
            raise JointStateError(f"joint_names: duplicate names in the config {joint_names}")
        self.joint_names = list(joint_names)
        self._cache: tuple[tuple[str, ...], np.ndarray] | None = None

    def _index(self, names: tuple[str, ...]) -> np.ndarray:
        if self._cache is not None and self._cache[0] == names:
            return self._cache[1]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise JointStateError(f"name: duplicate joint names {dup}")
        where = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.joint_names if n not in where]
        if missing:
            raise JointStateError(f"name: missing joints {missing} (message has {list(names)})")
        idx = np.array([where[n] for n in self.joint_names], dtype=np.intp)
        self._cache = (names, idx)
        return idx

    def map(self, names, positions) -> np.ndarray:
        """(configured joints,) float64 positions; raises naming missing/duplicate/NaN joints."""
        names = tuple(names)
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (len(names),):
            raise JointStateError(f"position: {pos.size} values for {len(names)} names")
        out = pos[self._index(names)]
        bad = ~np.isfinite(out)
        if bad.any():
            names = [self.joint_names[i] for i in np.where(bad)[0]]
            raise JointStateError(f"position: non-finite value for joints {names}")
        return out
