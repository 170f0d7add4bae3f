"""A short history of measured end-effector poses, so delta_measured chunks compose with the pose measured at
the chunk's observation stamp (not the newer one when the chunk arrives, which would add the motion made during
inference to every step). numpy only."""
from __future__ import annotations

from collections import deque

import numpy as np

from vla_ros.core.chunking import Target
from vla_ros.core.transforms import slerp


class PoseHistory:
    """Args: horizon_s (how much history is kept). Poses are (A, 7) arrays: xyz + quaternion xyzw per arm."""

    def __init__(self, horizon_s: float = 2.0):
        self.horizon_s = horizon_s
        self._items: deque[tuple[float, np.ndarray]] = deque()

    def add(self, stamp_s: float, pose: np.ndarray) -> None:
        pose = np.asarray(pose, dtype=np.float64).reshape(-1, 7)
        if self._items and stamp_s <= self._items[-1][0]:
            if stamp_s < self._items[-1][0]:  # out of order (e.g. a restarted clock): start over
                self._items.clear()
            else:
                self._items.pop()
        self._items.append((stamp_s, pose))
        while self._items and self._items[0][0] < stamp_s - self.horizon_s:
            self._items.popleft()

    def latest(self) -> Target | None:
        return _target(self._items[-1][1]) if self._items else None

    def at(self, stamp_s: float) -> tuple[Target | None, str]:
        """(pose at stamp_s, how it was found): "interpolated" between the two poses around it, "newest" when the
        stamp is past the newest pose, "oldest" when it is older than the history, or (None, "empty")."""
        if not self._items:
            return None, "empty"
        t_new, p_new = self._items[-1]
        if stamp_s >= t_new:
            return _target(p_new), "newest"
        t_old, p_old = self._items[0]
        if stamp_s <= t_old:
            return _target(p_old), "oldest"
        times = np.fromiter((t for t, _ in self._items), float, len(self._items))
        j = int(np.searchsorted(times, stamp_s))
        (t0, a), (t1, b) = self._items[j - 1], self._items[j]
        w = (stamp_s - t0) / (t1 - t0)
        pos = (1 - w) * a[:, :3] + w * b[:, :3]
        quat = np.stack([slerp(a[i, 3:], b[i, 3:], w) for i in range(len(a))])
        return _target(np.concatenate([pos, quat], -1)), "interpolated"


def _target(pose: np.ndarray) -> Target:
    return Target(pose[:, :3].copy(), pose[:, 3:].copy(), np.ones(len(pose)))
