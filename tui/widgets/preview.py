"""Images in the terminal: two pixels per character cell with the upper half block."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from rich.style import Style
from rich.text import Text


def decode(png: bytes, max_width: int = 64) -> np.ndarray:
    """RGB uint8 [H, W, 3], scaled down to at most `max_width` pixels wide (even height)."""
    with Image.open(io.BytesIO(png)) as opened:
        im = opened.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, max(2, round(im.height * max_width / im.width))), Image.Resampling.BOX)
        arr = np.asarray(im)
    if arr.shape[0] % 2:
        arr = np.concatenate([arr, arr[-1:]], axis=0)
    return arr


def half_blocks(image: np.ndarray) -> Text:
    text = Text()
    for y in range(0, image.shape[0], 2):
        for x in range(image.shape[1]):
            top, bottom = image[y, x], image[y + 1, x]
            text.append(
                "▀",
                Style(color=f"rgb({top[0]},{top[1]},{top[2]})", bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})"),
            )
        text.append("\n")
    return text
