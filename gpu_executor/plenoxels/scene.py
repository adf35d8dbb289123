"""`skydeck data make-scene`: a small synthetic scene in the NeRF-synthetic (Blender) layout.

The scene is traced analytically, so its held-out views are exact ground truth: an opaque sphere
with a view-dependent highlight, an opaque Lambertian box, and a semi-transparent sphere of
constant density (alpha = 1 - exp(-density * chord)). Images are RGBA PNGs over a transparent
background, antialiased with 2x2 supersampling, with `transforms_{train,val,test}.json` beside them.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gpu_executor.plenoxels.cameras import focal_from_angle, look_at, orbit, pixel_rays

CAMERA_ANGLE_X = 0.6911112070083618  # the NeRF-synthetic scenes' field of view
CAMERA_RADIUS = 4.0
LIGHT = np.array([0.4, -0.5, 0.75]) / np.linalg.norm([0.4, -0.5, 0.75])
SUBPIXELS = ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))


@dataclass(frozen=True)
class SceneInfo:
    name: str
    out: Path
    size: int
    views: dict[str, int]


def _sphere_hits(o: np.ndarray, d: np.ndarray, center: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    oc = o - center
    b = np.sum(oc * d, axis=-1)
    c = np.sum(oc * oc, axis=-1) - radius * radius
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = -b - root, -b + root
    miss = (disc <= 0) | (t1 <= 0)
    t0 = np.where(miss, np.inf, np.maximum(t0, 0.0))
    t1 = np.where(miss, np.inf, t1)
    return t0, t1


def _box_hit(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        ta, tb = (lo - o) * inv, (hi - o) * inv
    tmin = np.nanmax(np.minimum(ta, tb), axis=-1)
    tmax = np.nanmin(np.maximum(ta, tb), axis=-1)
    hit = (tmax >= np.maximum(tmin, 0.0)) & (tmin > 0)
    t = np.where(hit, tmin, np.inf)
    p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    rel = (p - centre) / half
    axis = np.argmax(np.abs(rel), axis=-1)
    normal = np.zeros_like(p)
    normal[np.arange(len(p)), axis] = np.sign(rel[np.arange(len(p)), axis])
    return t, normal


class Scene:
    """Three objects inside [-1.3, 1.3]^3, coloured so that SH degree 2 can represent them."""

    sphere_c, sphere_r = np.array([-0.45, -0.1, 0.15]), 0.55
    sphere_rgb = np.array([0.85, 0.3, 0.15])
    box_lo, box_hi = np.array([0.1, -0.75, -0.7]), np.array([0.8, -0.05, 0.0])
    box_rgb = np.array([0.15, 0.45, 0.8])
    glass_c, glass_r, glass_density = np.array([0.35, 0.55, 0.45]), 0.4, 3.0
    glass_rgb = np.array([0.95, 0.85, 0.2])

    def trace(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Premultiplied colour [N, 3] and alpha [N] for rays (origins o, unit directions d)."""
        ts, _ = _sphere_hits(o, d, self.sphere_c, self.sphere_r)
        tb, nb = _box_hit(o, d, self.box_lo, self.box_hi)
        t_opaque = np.minimum(ts, tb)
        hit = np.isfinite(t_opaque)
        p = o + d * np.where(hit, t_opaque, 0.0)[:, None]
        n_sphere = (p - self.sphere_c) / self.sphere_r
        normal = np.where((ts <= tb)[:, None], n_sphere, nb)
        lambert = np.clip(normal @ LIGHT, 0.0, 1.0)
        base = np.where((ts <= tb)[:, None], self.sphere_rgb, self.box_rgb)
        colour = base * (0.35 + 0.65 * lambert[:, None])
        # A soft highlight on the sphere only: it moves with the viewer (view-dependent colour).
        reflect = d - 2 * np.sum(d * normal, axis=-1, keepdims=True) * normal
        spec = np.clip(reflect @ LIGHT, 0.0, 1.0) ** 4 * 0.35
        colour = colour + np.where((ts <= tb)[:, None], spec[:, None], 0.0)
        colour = np.clip(colour, 0.0, 1.0) * hit[:, None]
        alpha = hit.astype(np.float64)
        g0, g1 = _sphere_hits(o, d, self.glass_c, self.glass_r)
        g1 = np.minimum(g1, t_opaque)
        inside = np.isfinite(g0) & (g1 > g0)
        chord = np.where(inside, np.where(inside, g1, 0.0) - np.where(inside, g0, 0.0), 0.0)
        a = 1.0 - np.exp(-self.glass_density * chord)
        colour = a[:, None] * self.glass_rgb + (1 - a)[:, None] * colour
        alpha = a + (1 - a) * alpha
        return colour, alpha


def render_view(scene: Scene, c2w: np.ndarray, size: int, focal: float) -> np.ndarray:
    """An RGBA uint8 image [size, size, 4] (straight, not premultiplied, alpha, as Blender writes)."""
    colour = np.zeros((size * size, 3))
    alpha = np.zeros(size * size)
    for offsets in SUBPIXELS:
        o, d = pixel_rays(c2w, size, size, focal, offsets)
        c, a = scene.trace(o, d)
        colour += c / len(SUBPIXELS)
        alpha += a / len(SUBPIXELS)
    straight = np.where(alpha[:, None] > 0, colour / np.maximum(alpha[:, None], 1e-8), 0.0)
    rgba = np.concatenate([np.clip(straight, 0, 1), alpha[:, None]], axis=-1)
    return (rgba.reshape(size, size, 4) * 255.0 + 0.5).astype(np.uint8)


def _random_upper_hemisphere(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    poses = []
    for _ in range(n):
        az = rng.uniform(0, 2 * np.pi)
        el = np.arcsin(rng.uniform(0.05, 0.95))
        pos = CAMERA_RADIUS * np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)])
        poses.append(look_at(pos))
    return poses


def make_scene(
    name: str, out: Path, size: int = 128, views: int = 100, test_views: int = 10, seed: int | None = None
) -> SceneInfo:
    """Write the scene under `out` (train/val/test splits). Deterministic for a given name and seed."""
    if not 16 <= size <= 2048:
        raise ValueError(f"--size must be between 16 and 2048 pixels, got {size}")
    if not 1 <= views <= 1000:
        raise ValueError(f"--views must be between 1 and 1000, got {views}")
    rng = np.random.default_rng(seed if seed is not None else zlib.crc32(name.encode()))
    scene = Scene()
    focal = focal_from_angle(size, CAMERA_ANGLE_X)
    splits = {
        "train": _random_upper_hemisphere(rng, views),
        "val": _random_upper_hemisphere(rng, max(1, test_views // 2)),
        "test": orbit(test_views, CAMERA_RADIUS, elevation_deg=25.0),
    }
    out.mkdir(parents=True, exist_ok=True)
    for split, poses in splits.items():
        (out / split).mkdir(exist_ok=True)
        frames = []
        for i, c2w in enumerate(poses):
            Image.fromarray(render_view(scene, c2w, size, focal), "RGBA").save(out / split / f"r_{i}.png")
            frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.0, "transform_matrix": c2w.tolist()})
        doc = {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}
        (out / f"transforms_{split}.json").write_text(json.dumps(doc, indent=1))
    return SceneInfo(name, out, size, {k: len(v) for k, v in splits.items()})
