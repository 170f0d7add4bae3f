"""RGB-D rendering of a MuJoCo camera with its intrinsics and its pose in the base frame (optical convention:
x right, y down, z forward), as a real camera driver + tf would report them."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from vla_ros.core.camera import Intrinsics

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
        self.rgb_renderer = mujoco.Renderer(model, height, width)
        self.depth_renderer = mujoco.Renderer(model, height, width)
        self.depth_renderer.enable_depth_rendering()

    def intrinsics(self) -> Intrinsics:
        return intrinsics(self.width, self.height, float(self.model.cam_fovy[self.cam_id]))

    def render(self, data) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB and (H, W) float32 depth in metres along the optical axis."""
        self.rgb_renderer.update_scene(data, self.cam_id)
        rgb = self.rgb_renderer.render().copy()
        self.depth_renderer.update_scene(data, self.cam_id)
        depth = self.depth_renderer.render().astype(np.float32)
        return rgb, depth

    def close(self) -> None:
        self.rgb_renderer.close()
        self.depth_renderer.close()
