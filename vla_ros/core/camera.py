"""CameraInfo fields -> intrinsics, and K kept consistent when images are resized or cropped for a model."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class CameraInfoError(ValueError):
    """A CameraInfo field is empty or inconsistent; the message names the field."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of `width` x `height` pixels.

    Args:
        K: (3, 3) camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].
        D: distortion coefficients (may be empty).
        width, height: image size the K belongs to.
        distortion_model: e.g. "plumb_bob"; empty when unknown.
    """

    K: np.ndarray
    D: np.ndarray
    width: int
    height: int
    distortion_model: str = ""

    def resized(self, width: int, height: int) -> Intrinsics:
        """K for the image resized (whole frame) to width x height. Pixel centres map as OpenCV resize does."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return Intrinsics(K, self.D, width, height, self.distortion_model)

    def cropped(self, x0: int, y0: int, width: int, height: int) -> Intrinsics:
        """K for the crop [y0:y0+height, x0:x0+width] of the image."""
        if x0 < 0 or y0 < 0 or x0 + width > self.width or y0 + height > self.height:
            raise CameraInfoError(f"crop ({x0},{y0},{width},{height}) outside the {self.width}x{self.height} image")
        K = self.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        return Intrinsics(K, self.D, width, height, self.distortion_model)


# Plausible pinhole intrinsics for an image of w x h pixels: a field of view between 1 and 175 degrees along each
# axis (focal length between 0.022 and 57 image widths/heights), and the principal point within a quarter of the
# image beyond its edges. A K outside these is a driver or calibration error, not a lens.
MIN_FOV_DEG, MAX_FOV_DEG = 1.0, 175.0
PRINCIPAL_POINT_MARGIN = 0.25


def intrinsics_from_fields(k, d, width: int, height: int, distortion_model: str = "") -> Intrinsics:
    """Build Intrinsics from CameraInfo's k (9 values, row-major), d, width, height; implausible values (see
    MIN_FOV_DEG, MAX_FOV_DEG, PRINCIPAL_POINT_MARGIN) are refused with the range they break."""
    K = np.asarray(k, dtype=np.float64)
    if K.size != 9:
        raise CameraInfoError(f"k: expected 9 values, got {K.size}")
    K = K.reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraInfoError(f"k: empty or invalid camera matrix (fx={K[0, 0]}, fy={K[1, 1]})")
    if width <= 0 or height <= 0:
        raise CameraInfoError(f"width/height: invalid image size {width}x{height}")
    for name, f, size in (("fx", K[0, 0], width), ("fy", K[1, 1], height)):
        lo = size / (2 * np.tan(np.radians(MAX_FOV_DEG) / 2))
        hi = size / (2 * np.tan(np.radians(MIN_FOV_DEG) / 2))
        if not lo <= f <= hi:
            raise CameraInfoError(f"k: implausible {name}={f:.6g} px for a {width}x{height} image (expected "
                                  f"{lo:.3g}..{hi:.4g} px, a {MIN_FOV_DEG:g}-{MAX_FOV_DEG:g} degree field of view)")
    for name, c, size in (("cx", K[0, 2], width), ("cy", K[1, 2], height)):
        m = PRINCIPAL_POINT_MARGIN * size
        if not -m <= c <= size + m:
            raise CameraInfoError(f"k: implausible {name}={c:.6g} px for a {width}x{height} image (expected "
                                  f"{-m:.4g}..{size + m:.4g} px)")
    return Intrinsics(K, np.asarray(d, dtype=np.float64), int(width), int(height), distortion_model or "")

