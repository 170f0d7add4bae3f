"""Bag messages -> Observations through the ObservationFeed the live observation frontend and the simulator use
(vla_ros/core/observation_feed.py: converters, calibration, pose checks, tf refresh, the assembler), so offline
and online see identical observations.

rosbags' deserialized messages have the same field names as rclpy's. One Observation is emitted per primary
camera frame, once that frame is complete (its depth arrived when the camera has a depth topic), assembled at
the frame's stamp; frames whose observation is invalid (a required source missing or stale) are counted in
`rejected` with the reason.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from vla_ros.core.observation_feed import ObservationFeed, Source, header_stamp_s
from vla_ros.core.sync import ObservationConfig
from vla_ros.core.tf_tree import TransformError, TransformTree
from vla_ros.core.types import Observation

TF_TOPICS = {"/tf_static": True, "/tf": False}  # topic -> static


class BagObservations:
    """Feed (topic, t_ns, msg) in time order; `feed` returns an Observation when a primary frame completes."""

    def __init__(self, cfg: ObservationConfig):
        self.cfg = cfg
        self.obs_feed = ObservationFeed(cfg, tf=TransformTree)
        self.by_topic: dict[str, Source] = {s.topic: s for s in self.obs_feed.sources()}
        self.primary = cfg.cameras[0]
        self.rejected: Counter[str] = Counter()  # "<source>: <reason>" -> count
        self.emitted = 0

    def topics(self) -> list[str]:
        tf = list(TF_TOPICS) if self.obs_feed.tf is not None else []
        return list(self.by_topic) + tf

    def required_topics(self) -> list[str]:
        """Topics without which no observation can be valid."""
        out = [self.primary.rgb_topic, self.primary.info_topic]
        if self.obs_feed.joints is not None:
            out.append(self.cfg.joint_topic)
        if self.cfg.require_instruction and self.cfg.instruction_topic:
            out.append(self.cfg.instruction_topic)
        if self.cfg.require_depth and self.primary.depth_topic:
            out.append(self.primary.depth_topic)
        return out

    def feed(self, topic: str, msg) -> Observation | None:
        if topic in TF_TOPICS and self.obs_feed.tf is not None:
            for line in self.obs_feed.tf.set_from_message(msg, TF_TOPICS[topic]):
                self.rejected[f"{topic.strip('/')}: {line[:120]}"] += 1
            return None
        source = self.by_topic.get(topic)
        if source is None:
            return None
        try:
            self.obs_feed.add_message(source, msg)
        except (ValueError, TransformError) as exc:  # the live frontend rejects the same inputs
            self.rejected[f"{source.kind}: {str(exc)[:120]}"] += 1
            return None
        if self.obs_feed.completes_frame(source):
            return self._emit(header_stamp_s(msg.header))
        return None

    def _emit(self, now_s: float) -> Observation | None:
        obs = self.obs_feed.assemble(now_s)
        if not obs.valid:
            for r in obs.reasons or ["invalid"]:
                self.rejected[f"observation: {r[:120]}"] += 1
            return None
        self.emitted += 1
        return obs


def replay(bag, feeder: BagObservations, extra=None, stride: int = 1) -> Iterator[tuple[int, Observation]]:
    """Observations of `bag` in time order as (t_ns, obs); every `stride`-th valid one. `extra` (e.g.
    RecordedActions) gets its own topics' messages on the way."""
    extra_topics = set(extra.topics()) if extra is not None else set()
    n = 0
    for topic, t_ns, msg in bag.messages(sorted(set(feeder.topics()) | extra_topics)):
        if topic in extra_topics:
            extra.feed(topic, t_ns, msg)
        obs = feeder.feed(topic, msg)
        if obs is not None:
            n += 1
            if (n - 1) % stride == 0:
                yield t_ns, obs
