"""Tabletop tasks where 3D matters: place on a platform of random height, stack by size, pick the nearer or
farther of two blocks (from the camera). Each samples a scene and an instruction from templates over colours,
sizes and relations, and has a success check on the ground-truth state. numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_ros.sim.scene import COLOURS, SceneSpec

TASKS = ("place_on_platform", "stack_by_size", "pick_by_distance")
SIZES_M = {"small": 0.016, "medium": 0.021, "large": 0.027}  # half edge lengths
X_RANGE_M, Y_RANGE_M, MIN_GAP_M = (0.36, 0.64), (-0.22, 0.22), 0.13
LIFT_M = 0.05  # a picked block's bottom must be this high above the table


@dataclass
class CameraRange:
    """Camera pose randomisation around a look-at point. Args: azimuth (0 = on the +x side, looking back at the
    robot), elevation above the table and distance ranges; target jitter (m); vertical field of view.
    The default is the tasks' range (what the demo and the ablation run on); WIDE_CAMERA, the wider range the
    bundled policies' demonstrations were recorded over."""

    azimuth_deg: tuple[float, float] = (-12.0, 12.0)
    elevation_deg: tuple[float, float] = (40.0, 52.0)
    distance_m: tuple[float, float] = (0.65, 0.75)
    target_xyz: tuple[float, float, float] = (0.5, 0.0, 0.04)
    target_jitter_m: float = 0.015
    fovy_deg: float = 50.0

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        az, el = np.radians(rng.uniform(*self.azimuth_deg)), np.radians(rng.uniform(*self.elevation_deg))
        target = np.asarray(self.target_xyz) + rng.uniform(-1, 1, 3) * [self.target_jitter_m] * 2 + [0]
        eye = target + rng.uniform(*self.distance_m) * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                                                  np.sin(el)])
        return eye, target


WIDE_CAMERA = CameraRange(azimuth_deg=(-35.0, 35.0), elevation_deg=(35.0, 60.0), distance_m=(0.6, 0.8),
                          target_jitter_m=0.03)
# The ablation's camera-shift column: the tasks' range turned 40-50 degrees in azimuth, 5-15 degrees beyond the
# widest view any bundled policy was trained on (WIDE_CAMERA's +-35).
SHIFTED_CAMERA = CameraRange(azimuth_deg=(40.0, 50.0))


@dataclass
class Episode:
    """A sampled task instance. Args: task name; instruction; scene; target (colour of the block to move or
    pick); destination ("platform", the colour of the block to stack on, or "" = lift it)."""

    task: str
    instruction: str
    scene: SceneSpec
    target: str
    destination: str = ""


def _positions(rng: np.random.Generator, n: int) -> list[tuple[float, float]]:
    for _ in range(1000):
        xy = rng.uniform([X_RANGE_M[0], Y_RANGE_M[0]], [X_RANGE_M[1], Y_RANGE_M[1]], (n, 2))
        d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(n)
        if d.min() >= MIN_GAP_M:
            return [tuple(map(float, p)) for p in xy]
    raise RuntimeError(f"could not place {n} objects {MIN_GAP_M} m apart")


def sample_episode(rng: np.random.Generator, task: str, camera: CameraRange | None = None, width: int = 128,
                   height: int = 96) -> Episode:
    if task not in TASKS:
        raise ValueError(f"task: unknown {task!r}; known: {list(TASKS)}")
    camera = camera or CameraRange()
    eye, look = camera.sample(rng)
    colours = [str(c) for c in rng.permutation(list(COLOURS))]
    common = dict(camera_eye=tuple(eye), camera_target=tuple(look), width=width, height=height,
                  fovy_deg=camera.fovy_deg)
    if task == "place_on_platform":  # one block: what matters is the platform's height
        xy = _positions(rng, 2)
        size = str(rng.choice(list(SIZES_M)))
        height_m = float(rng.uniform(0.02, 0.14))
        scene = SceneSpec(blocks={colours[0]: SIZES_M[size]}, block_xy={colours[0]: xy[0]}, platform_xy=xy[1],
                          platform_half_m=0.045, platform_height_m=height_m, **common)
        templates = ["put the {c} block on the platform", "place the {c} block onto the platform",
                     "move the {s} {c} block onto the platform"]
        text = str(rng.choice(templates)).format(c=colours[0], s=size)
        return Episode(task, text, scene, colours[0], "platform")
    if task == "stack_by_size":
        xy = _positions(rng, 2)
        small, large = ("small", "large") if rng.random() < 0.5 else ("medium", "large")
        if rng.random() < 0.3:
            small, large = "small", "medium"
        blocks = {colours[0]: SIZES_M[small], colours[1]: SIZES_M[large]}
        scene = SceneSpec(blocks=blocks, block_xy={colours[0]: xy[0], colours[1]: xy[1]}, platform_height_m=0.0,
                          **common)
        templates = ["stack the smaller block on the larger one", "put the smaller block on top of the bigger one",
                     "put the {c} block on the larger {c2} block", "stack the {s} block on the {l} block"]
        text = str(rng.choice(templates)).format(c=colours[0], c2=colours[1], s=small, l=large)
        return Episode(task, text, scene, colours[0], colours[1])
    # pick_by_distance: two equal blocks whose distances from the camera differ by at least 10 cm
    for _ in range(1000):
        xy = _positions(rng, 2)
        dist = [np.linalg.norm(np.array([*p, SIZES_M["medium"]]) - eye) for p in xy]
        if abs(dist[0] - dist[1]) >= 0.10:
            break
    relation = "nearer" if rng.random() < 0.5 else "farther"
    near = int(np.argmin(dist))
    target = near if relation == "nearer" else 1 - near
    blocks = {colours[0]: SIZES_M["medium"], colours[1]: SIZES_M["medium"]}
    scene = SceneSpec(blocks=blocks, block_xy={colours[0]: xy[0], colours[1]: xy[1]}, platform_height_m=0.0,
                      **common)
    word = {"nearer": ["nearer", "closer"], "farther": ["farther", "more distant"]}[relation]
    templates = ["pick up the {w} block", "pick up the block {w} to the camera", "lift the {w} of the two blocks"]
    if relation == "farther":
        templates[1] = "pick up the block farther from the camera"
    text = str(rng.choice(templates)).format(w=str(rng.choice(word)))
    return Episode(task, text, scene, colours[target], "")


def check_success(ep: Episode, block_xyz: dict[str, np.ndarray], touching: set[str]) -> bool:
    """Task success from ground truth: block centre positions (base frame) and the blocks the fingers touch."""
    half = ep.scene.blocks
    p = np.asarray(block_xyz[ep.target])
    if ep.task == "pick_by_distance":
        others_down = all(block_xyz[c][2] - half[c] < 0.01 for c in half if c != ep.target)
        return bool(p[2] - half[ep.target] > LIFT_M and others_down)
    if ep.target in touching:  # placing tasks need the block released
        return False
    if ep.destination == "platform":
        top, centre, reach = ep.scene.platform_height_m, np.asarray(ep.scene.platform_xy), ep.scene.platform_half_m
    else:
        base = np.asarray(block_xyz[ep.destination])
        top, centre, reach = base[2] + half[ep.destination], base[:2], half[ep.destination]
    on_top = abs(p[2] - half[ep.target] - top) < 0.012
    return bool(on_top and np.all(np.abs(p[:2] - centre) < reach))
