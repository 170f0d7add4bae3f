"""Depth validity and alignment checks. Depth aligned to colour is the supported case."""
from __future__ import annotations

import numpy as np


class DepthAlignmentError(ValueError):
    """Depth is not aligned to colour (other frame or other size)."""


def depth_validity(depth_m: np.ndarray, min_m: float = 0.0, max_m: float = np.inf) -> np.ndarray:
    """True where a depth pixel is usable: finite, > 0 and inside [min_m, max_m]. Zero and NaN are invalid."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth_m) & (depth_m > max(min_m, 0.0)) & (depth_m <= max_m)


def clean_depth(depth_m: np.ndarray, min_m: float = 0.0, max_m: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """(depth with invalid pixels set to 0, validity mask)."""
    valid = depth_validity(depth_m, min_m, max_m)
    return np.where(valid, depth_m, np.float32(0.0)).astype(np.float32, copy=False), valid


def check_aligned(rgb_frame: str, depth_frame: str, rgb_hw: tuple[int, int], depth_hw: tuple[int, int]) -> None:
    """Raise unless depth is registered to the colour image (same optical frame and size)."""
    if depth_frame and rgb_frame and depth_frame != rgb_frame:
        raise DepthAlignmentError(
            f"depth frame {depth_frame!r} != colour frame {rgb_frame!r}: only depth aligned to colour is "
            "supported (e.g. /camera/aligned_depth_to_color/image_raw)")
    if tuple(depth_hw) != tuple(rgb_hw):
        raise DepthAlignmentError(f"depth size {depth_hw} != colour size {rgb_hw}: depth must be aligned to colour")
