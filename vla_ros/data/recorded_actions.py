"""The actions recorded in a bag, per robot config, as per-arm target poses and gripper openings over time.

Sources (`source="auto"` takes the first the bag has):
- "command": the adapter's command topics, decoded by the robot's adapter (`RobotAdapter.decode`) — Franka
  PoseStamped targets; AgileX Piper PosCmd (x, y, z, roll, pitch, yaw, gripper in the driver's units); WidowX
  JointGroupCommand joint targets, mapped to poses by the wx250s forward kinematics (and JointSingleCommand
  gripper commands);
- "executor": the executor's `/vla_executor/commanded` PoseArray (one pose per arm; what a dry run records).
Gripper openings in [0, 1] (1 = open) come from the commands where they carry them (Piper, WidowX), else from
the gripper's JointState (`observation.gripper_topic`, finger positions summed), read STATE_GRIPPER_LEAD_S later
(a measured opening lags its command). Messages that are not the config's (another WidowX group or joint) are
skipped and counted in `skipped`.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from vla_ros.adapters.base import SkipMessage, header_time_s
from vla_ros.adapters.registry import make_adapter
from vla_ros.core.constants import UNIT_QUAT_TOL
from vla_ros.core.observation_feed import pose_fields_to_array

EXECUTOR_TOPIC = "/vla_executor/commanded"
SOURCES = ("auto", "command", "executor")
STATE_GRIPPER_LEAD_S = 0.5


class RecordedActionsError(ValueError):
    """The bag has no usable recorded actions for the config; the message names the topics."""


class _Track:
    """Stamped per-arm samples."""

    def __init__(self):
        self.t: list[float] = []
        self.v: list[np.ndarray | float] = []

    def add(self, t: float, v) -> None:
        self.t.append(t)
        self.v.append(v)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(np.asarray(self.t), kind="stable")
        return np.asarray(self.t)[order], np.asarray(self.v)[order]


class RecordedActions:
    """Feed bag messages (`topics()` only); then query targets at times.

    Args:
        cfg: RuntimeConfig (observation, executor.arm_names, adapter).
        bag_topics: topics present in the bag with at least one message (decides `auto`).
        source: auto | command | executor.
    """

    def __init__(self, cfg, bag_topics: set[str], source: str = "auto"):
        if source not in SOURCES:
            raise RecordedActionsError(f"actions source: {source!r} is not one of {SOURCES}")
        self.cfg, self.arms = cfg, list(cfg.executor.arm_names)
        ad = cfg.adapter
        self.adapter = make_adapter(ad)
        commands = list(ad.command_topics)
        has_commands = bool(commands) and all(t in bag_topics for t in commands)
        if source == "auto":
            source = "command" if has_commands else "executor" if EXECUTOR_TOPIC in bag_topics else ""
        if source == "command" and not has_commands:
            raise RecordedActionsError(f"no recorded commands on {[t for t in commands if t not in bag_topics]} "
                                       f"(the {ad.robot} config's command topics)")
        if source == "executor" and EXECUTOR_TOPIC not in bag_topics:
            raise RecordedActionsError(f"no recorded executor commands on {EXECUTOR_TOPIC}")
        if not source:
            raise RecordedActionsError(f"no recorded actions: the bag has neither the {ad.robot} config's command "
                                       f"topics {commands} nor {EXECUTOR_TOPIC}")
        self.source = source
        self.pose = [_Track() for _ in self.arms]
        self.grip = [_Track() for _ in self.arms]
        self.by_topic: dict[str, tuple[str, int]] = {}
        if source == "executor":
            self.by_topic[EXECUTOR_TOPIC] = ("pose_array", -1)
        else:
            for topic, a in self.adapter.recorded_topics(bag_topics, len(self.arms)).items():
                self.by_topic[topic] = ("command", a)
        self.gripper_from_commands = source == "command" and self.adapter.gripper_in_commands
        gt = cfg.observation.gripper_topic
        if not self.gripper_from_commands and gt and gt in bag_topics and len(self.arms) == 1:
            self.by_topic[gt] = ("gripper_state", 0)
        self.gripper_lead_s = 0.0 if self.gripper_from_commands else STATE_GRIPPER_LEAD_S
        self.topic_names = sorted(self.by_topic)
        self.skipped: Counter[str] = Counter()  # "<topic>: <why>" -> messages

    def topics(self) -> list[str]:
        return list(self.topic_names)

    @property
    def has_gripper(self) -> bool:
        return any(g.t for g in self.grip)

    def feed(self, topic: str, t_ns: int, msg) -> None:
        kind, a = self.by_topic[topic]
        if kind == "command":
            try:
                rec = self.adapter.decode(topic, a, msg, t_ns)
            except SkipMessage as exc:
                self.skipped[f"{topic}: {exc}"] += 1
                return
            if rec.pose7 is not None and not self._add_pose(topic, a, rec.t_s, rec.pose7):
                return
            if rec.gripper is not None:
                self.grip[a].add(rec.t_s, rec.gripper)
        elif kind == "pose_array":
            t = header_time_s(msg, t_ns)
            for i, p in enumerate(list(msg.poses)[:len(self.arms)]):
                self._add_pose(topic, i, t, pose_fields_to_array(p))
        elif kind == "gripper_state":
            width = float(np.sum(np.asarray(msg.position, dtype=np.float64)))
            self.grip[a].add(header_time_s(msg, t_ns),
                             float(np.clip(width / self.cfg.observation.gripper_open_width_m, 0.0, 1.0)))

    def _add_pose(self, topic: str, arm: int, t: float, pose7: np.ndarray) -> bool:
        norm = float(np.linalg.norm(pose7[3:]))
        if not np.isfinite(pose7).all() or abs(norm - 1.0) > UNIT_QUAT_TOL:
            self.skipped[f"{topic}: non-finite target or not a unit quaternion"] += 1
            return False
        self.pose[arm].add(t, np.concatenate([pose7[:3], pose7[3:] / norm]))
        return True

    def count(self) -> int:
        return min((len(p.t) for p in self.pose), default=0)

    def check(self) -> None:
        """RecordedActionsError naming the topics (and why messages were skipped) when an arm has no target."""
        empty = [arm for arm, p in zip(self.arms, self.pose) if not p.t]
        if empty:
            why = "; ".join(f"{k} (x{n})" for k, n in self.skipped.most_common(3))
            raise RecordedActionsError(f"no recorded target for arm(s) {empty} on {self.topic_names}"
                                       + (f"; skipped: {why}" if why else ""))

    def span(self) -> tuple[float, float]:
        """Time range covered by every arm's recorded targets."""
        self.check()
        return max(min(p.t) for p in self.pose), min(max(p.t) for p in self.pose)

    def series(self, arm: int) -> tuple[np.ndarray, np.ndarray]:
        """(times (M,), poses (M, 7)) of one arm, sorted."""
        return self.pose[arm].arrays()

    def poses_at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets interpolated at `times` (clamped to the recorded range): (M, A, 3) positions (linear) and
        (M, A, 4) quaternions (slerp)."""
        times = np.asarray(times, dtype=np.float64)
        pos = np.zeros((len(times), len(self.arms), 3))
        quat = np.zeros((len(times), len(self.arms), 4))
        for a in range(len(self.arms)):
            t, v = self.series(a)
            t, keep = np.unique(t, return_index=True)
            v = v[keep]
            pos[:, a] = np.stack([np.interp(times, t, v[:, i]) for i in range(3)], -1)
            if len(t) == 1:
                quat[:, a] = v[0, 3:]
            else:
                quat[:, a] = Slerp(t, Rotation.from_quat(v[:, 3:]))(np.clip(times, t[0], t[-1])).as_quat()
        return pos, quat

    def next_after(self, times: np.ndarray, max_delay_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each time, every arm's first target stamped at or after it (within max_delay_s):
        (M, A, 7) poses, (M, A) their stamps and (M,) bool found (for every arm)."""
        times = np.asarray(times, dtype=np.float64)
        out = np.zeros((len(times), len(self.arms), 7))
        stamps = np.zeros((len(times), len(self.arms)))
        found = np.ones(len(times), bool)
        for a in range(len(self.arms)):
            t, v = self.series(a)
            j = np.searchsorted(t, times - 1e-9)
            ok = j < len(t)
            ok[ok] &= t[j[ok]] - times[ok] <= max_delay_s
            found &= ok
            out[:, a] = v[np.clip(j, 0, len(t) - 1)]
            stamps[:, a] = t[np.clip(j, 0, len(t) - 1)]
        return out, stamps, found

    def gripper_at(self, times: np.ndarray, lead_s: float = 0.0) -> np.ndarray | None:
        """(M, A) opening in [0, 1] at times + lead_s (last value held; open before the first), or None when the
        bag records no gripper. `times`: (M,) for every arm, or (M, A) per arm."""
        if not self.has_gripper:
            return None
        times = np.asarray(times, dtype=np.float64) + lead_s
        out = np.ones((len(times), len(self.arms)))
        for a, g in enumerate(self.grip):
            if not g.t:
                continue
            t, v = g.arrays()
            j = np.searchsorted(t, times if times.ndim == 1 else times[:, a], side="right") - 1
            out[:, a] = np.where(j >= 0, v[np.clip(j, 0, len(t) - 1)], 1.0)
        return out


def actions_in_bag(bag, cfg, source: str = "auto") -> RecordedActions:
    """RecordedActions for an open `vla_ros.data.bags.Bag` (its topics with messages); RecordedActionsError naming
    the topics when the bag has none for the config, or their type has no definition."""
    present = {t for t, i in bag.topics().items() if i.count > 0}
    actions = RecordedActions(cfg, present, source)
    unreadable = [f"{t}: {bag.skipped[t]}" for t in actions.topics() if t in bag.skipped]
    if unreadable:
        raise RecordedActionsError("; ".join(unreadable) + " (give the robot's .msg folders with --msg-dir)")
    return actions
