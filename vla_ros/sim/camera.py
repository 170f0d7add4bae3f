"""RGB-D rendering of a MuJoCo camera with its intrinsics and its pose in the base frame (optical convention:
x right, y down, z forward), as a real camera driver + tf would report them."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.core.camera import Intrinsics

_PROBE = ("import mujoco; m = mujoco.MjModel.from_xml_string('<mujoco/>'); r = mujoco.Renderer(m, 8, 8); "
          "r.update_scene(mujoco.MjData(m)); r.render()")


def select_gl_backend() -> str:
    """Sets MUJOCO_GL for headless rendering before mujoco is imported: a value already set is kept; otherwise
    EGL, falling back to OSMesa, whichever renders in a throwaway process. Returns the backend ("default" when
    mujoco was already imported without MUJOCO_GL, which is then out of our hands)."""
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    if "mujoco" in sys.modules:  # too late to choose: MUJOCO_GL is read when mujoco is imported
        return "default"
    for backend in ("egl", "osmesa"):
        env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
        try:
            probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60)
            ok = probe.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            os.environ["MUJOCO_GL"] = backend
            return backend
    raise RuntimeError("MuJoCo cannot render headless here: neither MUJOCO_GL=egl nor MUJOCO_GL=osmesa works "
                       "(install libegl1 or libosmesa6)")


# MuJoCo cameras look along -z with y up; the optical frame looks along +z with y down.
MJ_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


def intrinsics(width: int, height: int, fovy_deg: float) -> Intrinsics:
    """Pinhole K of a MuJoCo camera (square pixels, principal point at the image centre)."""
    f = 0.5 * height / np.tan(np.radians(fovy_deg) / 2)
    K = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return Intrinsics(K, np.zeros(5), width, height, "plumb_bob")


def camera_pose(data, cam_id: int) -> np.ndarray:
    """T_base_camera (optical frame) from the simulation state."""
    T = np.eye(4)
    T[:3, :3] = data.cam_xmat[cam_id].reshape(3, 3) @ MJ_TO_OPTICAL
    T[:3, 3] = data.cam_xpos[cam_id]
    return T


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MuJoCo camera quaternion (wxyz) looking from eye at target with the image's up roughly +z."""
    fwd = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:  # looking straight down: image up is +x
        right = np.cross(fwd, [1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    R = np.stack([right, up, -fwd], 1)  # MuJoCo camera axes as columns
    x, y, z, w = Rotation.from_matrix(R).as_quat()
    return np.array([w, x, y, z])


class RGBDCamera:
    def __init__(self, model, name: str, width: int, height: int):
        import mujoco

        self.model, self.cam_id = model, mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if self.cam_id < 0:
            raise ValueError(f"camera {name!r} not in the model")
        self.name, self.width, self.height = name, width, height
        self.renderer = mujoco.Renderer(model, height, width)

    def intrinsics(self) -> Intrinsics:
        return intrinsics(self.width, self.height, float(self.model.cam_fovy[self.cam_id]))

    def render(self, data) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB and (H, W) float32 depth in metres along the optical axis."""
        self.renderer.update_scene(data, self.cam_id)
        rgb = self.renderer.render().copy()
        self.renderer.enable_depth_rendering()
        try:
            depth = self.renderer.render().astype(np.float32)
        finally:
            self.renderer.disable_depth_rendering()
        return rgb, depth

    def close(self) -> None:
        self.renderer.close()
