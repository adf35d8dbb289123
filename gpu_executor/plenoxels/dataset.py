"""The NeRF-synthetic (Blender) dataset layout: `transforms_{split}.json` + RGBA PNGs.

Everything is checked before training starts: a missing or unreadable file, JSON without
`camera_angle_x` or `frames`, a pose that is not 4x4, or images of different sizes are refused
with the file named. Poses are scaled by `scene_scale` (svox2's default 2/3) so that the scene
lies in svox2's unit cube, which keeps checkpoints interchangeable with svox2's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from gpu_executor.plenoxels.cameras import focal_from_angle, pixel_rays

DEFAULT_SCENE_SCALE = 2.0 / 3.0
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The dataset cannot be used; the message names the file and what is wrong with it."""


@dataclass
class Split:
    name: str
    images: np.ndarray  # [N, H, W, 3] float32 in [0, 1], composited on the background
    poses: np.ndarray  # [N, 4, 4] camera-to-world, OpenGL convention, scene_scale applied
    focal: float
    files: list[str]

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def rays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return pixel_rays(self.poses[index], self.width, self.height, self.focal)

    def all_rays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Origins, directions and colours of every pixel of every view, [N*H*W, 3] float32 each."""
        origins, dirs = zip(*(self.rays(i) for i in range(len(self))), strict=True)
        o = np.concatenate(origins).astype(np.float32)
        d = np.concatenate(dirs).astype(np.float32)
        return o, d, self.images.reshape(-1, 3).astype(np.float32)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing; a NeRF-synthetic scene has transforms_train.json and transforms_test.json"
        )
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: expected an object with camera_angle_x and frames")
    angle = doc.get("camera_angle_x")
    if isinstance(angle, bool) or not isinstance(angle, int | float) or not 0 < angle < np.pi:
        raise DatasetError(f"{path}: camera_angle_x must be a field of view in radians, got {angle!r}")
    frames = doc.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path}: frames must be a non-empty list")
    return doc


def _read_image(path: Path, downscale: int) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: missing (named by a frame's file_path)")
    try:
        with Image.open(path) as opened:
            im = opened.convert("RGBA") if opened.mode in ("RGBA", "LA", "P", "PA") else opened.convert("RGB")
            if downscale > 1:
                w, h = im.size
                if w % downscale or h % downscale:
                    raise DatasetError(f"{path}: {w}x{h} does not divide by --downscale {downscale}")
                im = im.resize((w // downscale, h // downscale), Image.Resampling.BOX)
            return np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from None


def load_split(
    root: Path,
    split: str,
    downscale: int = 1,
    white_bkgd: bool = True,
    scene_scale: float | None = None,
    limit: int | None = None,
) -> Split:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    if downscale < 1:
        raise DatasetError(f"--downscale must be 1 or more, got {downscale}")
    json_path = root / f"transforms_{split}.json"
    doc = _read_json(json_path)
    frames = doc["frames"][:limit] if limit else doc["frames"]
    images: list[np.ndarray] = []
    poses: list[np.ndarray] = []
    files: list[str] = []
    for i, frame in enumerate(frames):
        where = f"{json_path}: frames[{i}]"
        if not isinstance(frame, dict) or not isinstance(frame.get("file_path"), str):
            raise DatasetError(f"{where}: needs a file_path string")
        pose = np.asarray(frame.get("transform_matrix"), dtype=np.float64) if frame.get("transform_matrix") else None
        if pose is None or pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise DatasetError(f"{where}: transform_matrix must be a 4x4 matrix of numbers")
        rel = frame["file_path"]
        rel = rel if rel.endswith(".png") else rel + ".png"
        path = (root / rel).resolve()
        if root.resolve() not in path.parents:
            raise DatasetError(f"{where}: file_path {frame['file_path']!r} points outside the scene directory")
        image = _read_image(path, downscale)
        if images and image.shape[:2] != images[0].shape[:2]:
            raise DatasetError(
                f"{path}: is {image.shape[1]}x{image.shape[0]} but {files[0]} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; every view must have the same size"
            )
        if image.shape[-1] == 4:
            # as svox2's NeRF loader: composited on white, or (white_bkgd false) the colour channels as stored
            rgb, alpha = image[..., :3], image[..., 3:]
            image = rgb * alpha + (1.0 - alpha) if white_bkgd else rgb
        images.append(image.astype(np.float32))
        poses.append(pose)
        files.append(str(path))
    stacked = np.stack(poses)
    stacked[:, :3, 3] *= DEFAULT_SCENE_SCALE if scene_scale is None else scene_scale
    width = images[0].shape[1]
    return Split(split, np.stack(images), stacked, focal_from_angle(width, float(doc["camera_angle_x"])), files)


def check_scene(root: Path) -> dict[str, int]:
    """Validate a scene directory without keeping the images; returns views per split present."""
    counts: dict[str, int] = {}
    for split in SPLITS:
        if split != "train" and not (Path(root) / f"transforms_{split}.json").exists():
            continue
        counts[split] = len(load_split(root, split))
    if "test" not in counts and "val" not in counts:
        raise DatasetError(f"{root}: needs transforms_test.json (or transforms_val.json) for held-out views")
    return counts
