"""The robot-side executor as a pure state machine: chunks in, one clamped command per controller tick out.

`on_chunk(chunk, now_s, measured)` validates and stores a chunk (delta chunks resolved to absolute poses);
`tick(now_s)` returns a Command: "move" with a target, or "hold" / "paused" / "estop" with a reason. No
time source of its own, so it runs identically in a node, a benchmark or a test.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from vla_ros.core.chunking import Splicer, Target, TemporalEnsembler, resolve_reference
from vla_ros.core.config import bounded, check, check_bounds
from vla_ros.core.log_causes import cause_of
from vla_ros.core.safety import SafetyConfig, clamp_target, distance_outside_box_m, validate_chunk
from vla_ros.core.types import ActionChunk

ExecutorMode = Literal["ensemble", "splice"]
CommandKind = Literal["move", "hold", "paused", "estop"]


@dataclass
class ExecutorConfig:
    """Args:
    rate_hz: controller command rate (e.g. 5 WidowX, 15-20 Franka targets, 50 AgileX).
    mode: "ensemble" (temporal ensembling) or "splice" (latency-compensated splicing with blending).
    ensemble_decay: exp(-decay * i) weights of overlapping chunks (i = 0 the oldest, as ACT).
    blend_steps: seam blending in splice mode, in chunk steps, shortened to the interval between chunks when
        chunks come faster.
    arm_names, base_frame: what chunks must carry.
    chunk_topic, measured_pose_topic: ActionChunk input, measured end-effector pose (for delta_measured).
    policy_node: fully qualified name of the policy node; chunks from any other node's publisher on chunk_topic
        are refused (a second publisher can neither drive the arm nor lock the policy out). "" accepts every
        publisher (e.g. chunks replayed from a bag).
    safety: layered limits.
    thread_priority: SCHED_FIFO priority of the executor node's control thread (1-99, as ros2_control's
        `thread_priority`; 0 = the default scheduler). Without the right to it (`ulimit -r`; e.g. a `realtime`
        group with `rtprio 99` in /etc/security/limits.conf) the node warns once and runs unprioritised.
    """

    rate_hz: float = bounded(20.0, 0.5, 2000.0)
    mode: ExecutorMode = "splice"
    ensemble_decay: float = 0.1
    blend_steps: int = bounded(3, 0, 100, unit="steps")
    arm_names: list[str] = field(default_factory=lambda: ["arm"])
    base_frame: str = "base"
    chunk_topic: str = "/vla/action_chunk"
    measured_pose_topic: str = ""
    policy_node: str = "/vla_policy"
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    thread_priority: int = bounded(50, 0, 99)

    def __post_init__(self):
        check_bounds(self)
        check(self.mode in get_args(ExecutorMode), "mode", self.mode, f"expected one of {list(get_args(ExecutorMode))}")
        check(not self.policy_node or self.policy_node.startswith("/"), "policy_node", self.policy_node,
              "expected a fully qualified node name such as /vla_policy, or '' to accept any publisher")


def tick_timing(tick_times_s, rate_hz: float) -> tuple[float, np.ndarray]:
    """A control loop's achieved rate (ticks over the time they span) and its jitter |gap - period| (s) per gap,
    from the loop's own tick instants."""
    gaps = np.diff(np.asarray(tick_times_s, dtype=float))
    achieved = 1.0 / float(np.mean(gaps)) if gaps.size else 0.0
    return achieved, np.abs(gaps - 1.0 / rate_hz)


@dataclass
class Command:
    kind: CommandKind
    target: Target | None = None
    reason: str = ""


class Executor:
    def __init__(self, cfg: ExecutorConfig):
        self.cfg = cfg
        self.counters: Counter[str] = Counter()
        self.ensembler = TemporalEnsembler(cfg.ensemble_decay)
        self.splicer = Splicer(cfg.blend_steps)
        self.last_command: Target | None = None
        self.newest_stamp_s: float | None = None
        self.newest_received_s: float | None = None
        self.last_seq: int | None = None
        self.paused = False
        self.estopped = False
        self.reset_stamp_s: float | None = None

    def on_chunk(self, chunk: ActionChunk, now_s: float, measured: Target | None = None) -> list[str]:
        """Store a chunk; returns the reasons it was refused (empty = accepted)."""
        s = self.cfg.safety
        if self.reset_stamp_s is not None and chunk.stamp_s <= self.reset_stamp_s:
            self.counters["dropped_from_before_reset"] += 1  # observed before the reset: not this episode's
            return ["observed before the last reset"]
        reasons = []
        if chunk.stamp_s - now_s > s.max_future_s:
            reasons.append(f"chunk stamped {chunk.stamp_s - now_s:.3f} s in the future > max {s.max_future_s} s "
                           "(clock skew between the machines?)")
        elif now_s - chunk.stamp_s > s.max_chunk_age_s:
            reasons.append(f"chunk too old on arrival: {now_s - chunk.stamp_s:.3f} s > {s.max_chunk_age_s} s")
        elif self.newest_stamp_s is not None and chunk.stamp_s <= self.newest_stamp_s:
            reasons.append(f"chunk stamp {chunk.stamp_s:.3f} not after the newest {self.newest_stamp_s:.3f}")
        if not reasons:
            reasons = validate_chunk(chunk, self.cfg.arm_names, self.cfg.base_frame, None, s)
        if not reasons:
            try:
                chunk = resolve_reference(chunk, self.last_command, measured)
            except ValueError as exc:
                reasons = [str(exc)]
        if not reasons:  # jumps are checked from the last command, or from the measured pose before the first
            current = self.last_command if self.last_command is not None else measured
            reasons = validate_chunk(chunk, self.cfg.arm_names, self.cfg.base_frame, current, s)
        if reasons:
            for r in reasons:  # count by kind: numbers stripped so the keys stay few
                self.counters["refused_chunk: " + cause_of(r.split(" (")[0])] += 1
            return reasons
        self.counters["accepted_chunks"] += 1
        self.newest_stamp_s, self.newest_received_s = chunk.stamp_s, now_s
        self.last_seq = chunk.seq
        if self.cfg.mode == "ensemble":
            self.ensembler.add(chunk)
        else:
            self.splicer.add(chunk, now_s, self.last_command)
            self.counters["skipped_steps"] += self.splicer.skipped_steps
        return []

    def tick(self, now_s: float, measured: Target | None = None) -> Command:
        """The command for this controller tick. Before any command was sent, step and speed limits apply
        from the measured pose (when known), so the first target cannot jump the robot."""
        if self.estopped:
            return Command("estop", reason="e-stop engaged")
        if self.paused:
            return Command("paused", reason="paused")
        if self.newest_stamp_s is None:
            return Command("hold", reason="no chunk yet")
        limit = self.cfg.safety.chunk_timeout_s
        age, since_receipt = now_s - self.newest_stamp_s, now_s - self.newest_received_s
        if age > limit or since_receipt > limit:
            self.counters["hold_timeout"] += 1
            what = f"is {age:.2f} s old" if age > limit else f"arrived {since_receipt:.2f} s ago"
            return Command("hold", reason=f"newest chunk {what} > timeout {limit} s")
        raw = self.ensembler.at(now_s) if self.cfg.mode == "ensemble" else self.splicer.at(now_s)
        if raw is None:
            return Command("hold", reason="no target")
        previous = self.last_command if self.last_command is not None else measured
        target = clamp_target(previous, raw, 1.0 / self.cfg.rate_hz, self.cfg.safety, self.counters)
        if target is None:
            d = distance_outside_box_m(previous.position_m, self.cfg.safety)
            return Command("hold", reason=f"measured pose {d:.3f} m outside the workspace box: no command can be "
                                          "both inside it and within one step; move the arm inside the box")
        self.last_command = target
        self.counters["commands"] += 1
        return Command("move", target)

    def estop(self) -> None:
        self.estopped = True
        self.counters["estop"] += 1

    def reset(self, now_s: float) -> None:
        """Start over (e.g. a new episode): drop every chunk and the last command, and ignore chunks observed
        up to now_s; the next command is limited from the measured pose again. Pause and e-stop are kept."""
        self.ensembler = TemporalEnsembler(self.cfg.ensemble_decay)
        self.splicer = Splicer(self.cfg.blend_steps)
        self.last_command, self.newest_stamp_s, self.newest_received_s, self.last_seq = None, None, None, None
        self.reset_stamp_s = now_s
        self.counters["resets"] += 1

    def release_estop(self) -> None:
        """Clear the e-stop; old chunks are dropped so nothing stale resumes."""
        self.estopped = False
        self.ensembler = TemporalEnsembler(self.cfg.ensemble_decay)
        self.splicer = Splicer(self.cfg.blend_steps)
        self.newest_stamp_s = None
