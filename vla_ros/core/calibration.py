"""Camera extrinsics from a calibration YAML, for robots without tf.

Format:
    base_frame: fr3_link0
    cameras:
      front:                       # camera name from the robot config
        frame_id: camera_color_optical_frame
        translation_m: [0.6, 0.0, 0.5]
        quaternion_xyzw: [0.0, 0.707, 0.0, 0.707]   # T_base_camera rotation (optical frame)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from vla_ros.core.config import ConfigError
from vla_ros.core.transforms import pose_to_matrix


def load_calibration(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """-> (base_frame, {camera name: T_base_camera 4x4})."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: calibration file not found") from None
    unknown = set(data) - {"base_frame", "cameras"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: base_frame, cameras")
    out = {}
    for name, cam in (data.get("cameras") or {}).items():
        extra = set(cam) - {"frame_id", "translation_m", "quaternion_xyzw"}
        if extra:
            raise ConfigError(f"{path}: cameras.{name}: unknown key(s) {sorted(extra)}")
        t = np.asarray(cam.get("translation_m", []), dtype=float)
        q = np.asarray(cam.get("quaternion_xyzw", []), dtype=float)
        if t.shape != (3,) or q.shape != (4,) or not np.isfinite(np.r_[t, q]).all() or np.linalg.norm(q) < 1e-6:
            raise ConfigError(f"{path}: cameras.{name}: need translation_m (3 numbers) and a non-zero "
                              "quaternion_xyzw (4 numbers)")
        out[name] = pose_to_matrix(t, q / np.linalg.norm(q))
    return str(data.get("base_frame", "base")), out
