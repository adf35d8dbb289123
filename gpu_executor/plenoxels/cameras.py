"""Camera conventions shared by the scene maker, the loader and the renderer.

Poses are stored as the NeRF-synthetic files store them: camera-to-world matrices in OpenGL
convention (the camera looks down -z, +y is up). Rays are generated through pixel centres, the
way svox2 generates them, after converting the pose to OpenCV convention.
"""

from __future__ import annotations

import numpy as np

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def look_at(
    position: np.ndarray, target: np.ndarray = np.zeros(3), up: np.ndarray = np.array([0.0, 0.0, 1.0])
) -> np.ndarray:
    """A camera-to-world matrix (OpenGL convention) at `position` looking at `target`, z up."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight down: any horizontal right works
        right = np.array([1.0, 0.0, 0.0])
    right = right / np.linalg.norm(right)
    true_up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, -forward, position
    return c2w


def focal_from_angle(width: int, camera_angle_x: float) -> float:
    return 0.5 * width / np.tan(0.5 * camera_angle_x)


def pixel_rays(
    c2w_opengl: np.ndarray, width: int, height: int, focal: float, offsets: tuple[float, float] = (0.5, 0.5)
) -> tuple[np.ndarray, np.ndarray]:
    """Origins and unit directions [H*W, 3] for one camera; `offsets` picks the point within each pixel."""
    c2w = c2w_opengl @ OPENGL_TO_OPENCV
    xs, ys = np.meshgrid(np.arange(width) + offsets[0], np.arange(height) + offsets[1])
    cam = np.stack([(xs - 0.5 * width) / focal, (ys - 0.5 * height) / focal, np.ones_like(xs)], axis=-1)
    cam = cam.reshape(-1, 3)
    dirs = cam @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origins = np.broadcast_to(c2w[:3, 3], dirs.shape).copy()
    return origins, dirs


def orbit(n: int, radius: float, elevation_deg: float = 30.0) -> list[np.ndarray]:
    """`n` poses on a horizontal circle around the origin (turntables, test paths)."""
    el = np.radians(elevation_deg)
    poses = []
    for i in range(n):
        az = 2 * np.pi * i / n
        pos = radius * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
        poses.append(look_at(pos))
    return poses
