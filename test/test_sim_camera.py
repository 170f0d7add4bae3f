"""MuJoCo tabletop camera: metric depth, intrinsics and the optical-frame pose agree with the scene geometry."""
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
mujoco = pytest.importorskip("mujoco")

from vla_ros.sim.camera import RGBDCamera, look_at  # noqa: E402
from vla_ros.sim.scene import SceneSpec, build_mjcf  # noqa: E402


@pytest.fixture(scope="module")
def world():
    spec = SceneSpec()
    try:
        model = mujoco.MjModel.from_xml_string(build_mjcf(spec))
        data = mujoco.MjData(model)
        cam = RGBDCamera(model, "front", spec.width, spec.height)
    except Exception as exc:  # no EGL/OSMesa on this machine
        pytest.skip(f"MuJoCo cannot render headless here: {exc}")
    yield model, data, cam
    cam.close()


def place(model, data, eye, target, block_xy=None):
    model.cam_pos[0] = eye
    model.cam_quat[0] = look_at(np.asarray(eye, float), np.asarray(target, float))
    if block_xy is not None:
        j = model.joint("block_red_free").qposadr[0]
        data.qpos[j:j + 7] = [*block_xy, 0.02, 1, 0, 0, 0]
    mujoco.mj_forward(model, data)


def project(cam, data, p_base):
    from vla_ros.sim.camera import camera_pose

    T = camera_pose(data, cam.cam_id)
    p_cam = np.linalg.inv(T) @ np.r_[p_base, 1.0]
    uv = cam.intrinsics().K @ p_cam[:3]
    return uv[:2] / uv[2], p_cam[2]


def test_known_scene_gives_known_depth_at_known_pixel(world):
    model, data, cam = world
    place(model, data, [0.3, 0.3, 0.8], [0.3, 0.3, 0.0])  # straight down on empty table
    rgb, depth = cam.render(data)
    h, w = depth.shape
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
    assert depth[h // 2, w // 2] == pytest.approx(0.8, abs=2e-3)
    place(model, data, [0.3, 0.3, 0.8], [0.3, 0.3, 0.0], block_xy=[0.3, 0.3])  # 4 cm cube under the camera
    _, depth = cam.render(data)
    assert depth[h // 2, w // 2] == pytest.approx(0.76, abs=2e-3)


def test_intrinsics_and_optical_pose_match_the_render(world):
    from vla_ros.sim.camera import camera_pose

    model, data, cam = world
    place(model, data, [0.9, 0.1, 0.5], [0.35, -0.25, 0.05], block_xy=[0.35, -0.25])  # oblique, unoccluded
    _, depth = cam.render(data)
    (u, v), z = project(cam, data, np.array([0.35, -0.25, 0.04]))  # centre of the cube's top face
    assert 0 <= u < cam.width and 0 <= v < cam.height
    assert depth[int(round(v)), int(round(u))] == pytest.approx(z, abs=5e-3)
    # back-projecting that pixel with K and T_base_camera lands on the cube's top face
    K, T = cam.intrinsics().K, camera_pose(data, cam.cam_id)
    ui, vi = int(round(u)), int(round(v))
    p = T @ np.r_[np.linalg.inv(K) @ [ui, vi, 1.0] * depth[vi, ui], 1.0]
    assert p[2] == pytest.approx(0.04, abs=5e-3) and abs(p[0] - 0.35) < 0.02 and abs(p[1] + 0.25) < 0.02
    R = T[:3, :3]
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-9)
    assert R[:, 2] @ (np.array([0.35, -0.25, 0.05]) - T[:3, 3]) > 0  # optical z looks at the target
