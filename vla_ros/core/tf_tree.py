"""A small transform tree (the part of tf2 that observation assembly needs), with loud failures.

Edges are parent -> child transforms T_parent_child, static (never age) or stamped. `lookup(target,
source)` returns T_target_source by composing along the tree through the common ancestor. A missing
frame, a disconnected tree or a stale dynamic edge raises TransformError naming the frames; there is
never a silent identity fallback.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from vla_ros.core.transforms import invert, pose_to_matrix


class TransformError(LookupError):
    """No usable transform between two frames; the message says which link is missing or stale."""


@dataclass
class _Edge:
    parent: str
    T_parent_child: np.ndarray
    stamp_s: float | None  # None = static


class TransformTree:
    """Thread-safe: a tf callback may set transforms while another thread looks them up."""

    def __init__(self):
        self._edges: dict[str, _Edge] = {}  # child -> edge to its parent
        self._lock = threading.RLock()

    def set_transform(self, parent: str, child: str, T_parent_child: np.ndarray, stamp_s: float | None) -> None:
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if parent == child:
            raise TransformError(f"transform {parent} -> {child}: a frame cannot be its own parent")
        edge = _Edge(parent, np.asarray(T_parent_child, dtype=np.float64), stamp_s)
        with self._lock:
            old = self._edges.get(child)
            if old is not None and stamp_s is not None and old.stamp_s is not None and stamp_s < old.stamp_s:
                return  # out-of-order dynamic transform: keep the newer one
            self._edges[child] = edge

    def set_from_message(self, msg, static: bool) -> list[str]:
        """Every transform of a tf2_msgs/TFMessage (rclpy's or rosbags' fields), `static` for /tf_static; a
        transform that is non-finite or makes a frame its own parent is dropped, with a line saying so."""
        dropped = []
        for t in msg.transforms:
            tr, q = t.transform.translation, t.transform.rotation
            stamp = t.header.stamp
            try:
                T = pose_to_matrix([tr.x, tr.y, tr.z], [q.x, q.y, q.z, q.w])
                if not np.isfinite(T).all():
                    raise ValueError("non-finite transform")
                self.set_transform(t.header.frame_id, t.child_frame_id, T,
                                   None if static else stamp.sec + stamp.nanosec * 1e-9)
            except (ValueError, TransformError) as exc:
                dropped.append(f"dropped {t.header.frame_id} -> {t.child_frame_id}: {exc}")
        return dropped

    def remove_frame(self, child: str) -> None:
        with self._lock:
            self._edges.pop(child.lstrip("/"), None)

    def frames(self) -> set[str]:
        with self._lock:
            return set(self._edges) | {e.parent for e in self._edges.values()}

    def _chain(self, frame: str) -> list[str]:
        chain, seen = [frame], {frame}
        while frame in self._edges:
            frame = self._edges[frame].parent
            if frame in seen:
                raise TransformError(f"tf cycle through frame {frame!r}")
            chain.append(frame)
            seen.add(frame)
        return chain

    def lookup(self, target: str, source: str, now_s: float | None = None, max_age_s: float = math.inf
               ) -> tuple[np.ndarray, float | None]:
        """T_target_source and the oldest dynamic stamp used (None if all static)."""
        with self._lock:
            return self._lookup(target.lstrip("/"), source.lstrip("/"), now_s, max_age_s)

    def _lookup(self, target: str, source: str, now_s: float | None, max_age_s: float
                ) -> tuple[np.ndarray, float | None]:
        if target == source:
            return np.eye(4), None
        known = self.frames()
        for name, frame in (("target", target), ("source", source)):
            if frame not in known:
                raise TransformError(f"no transform {target} <- {source}: {name} frame {frame!r} unknown "
                                     f"(known frames: {sorted(known)})")
        up_s, up_t = self._chain(source), self._chain(target)
        common = next((f for f in up_s if f in set(up_t)), None)
        if common is None:
            raise TransformError(f"no transform {target} <- {source}: frames are in unconnected trees "
                                 f"(roots {up_t[-1]!r} and {up_s[-1]!r})")
        oldest: float | None = None

        def climb(chain: list[str]) -> np.ndarray:
            nonlocal oldest
            T = np.eye(4)
            for frame in chain[:chain.index(common)]:
                edge = self._edges[frame]
                if edge.stamp_s is not None:
                    if now_s is not None and now_s - edge.stamp_s > max_age_s:
                        raise TransformError(f"no transform {target} <- {source}: link {edge.parent} -> {frame} is "
                                             f"stale ({now_s - edge.stamp_s:.3f} s > max {max_age_s} s)")
                    oldest = edge.stamp_s if oldest is None else min(oldest, edge.stamp_s)
                T = edge.T_parent_child @ T
            return T

        T_common_source = climb(up_s)
        T_common_target = climb(up_t)
        return invert(T_common_target) @ T_common_source, oldest
