"""Baseline: the VLM's learned action token through the action head, with no spatial input (the shared body of
vlm_policy.py as is). FALCON, Spatial Forcing and SpatialVLA add their spatial part to the same body, so the
comparison isolates it."""
from __future__ import annotations

from vla_ros.policies.factory import register_policy
from vla_ros.policies.vlm_policy import VLMPolicy


@register_policy
class BaselinePolicy(VLMPolicy):
    method = "baseline"
    TINY_ARGS: dict = {}
