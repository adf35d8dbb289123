"""LPIPS, as svox2's render_imgs.py computes it (the `lpips` package, VGG network), when the host has it.

Its weights are not something skydeck can ship: where the package or its VGG weights are missing,
the metric is absent and the reason is recorded instead - a job never reports a made-up number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Scorer = Callable[[np.ndarray, np.ndarray], float]


def lpips_scorer() -> tuple[Scorer | None, str]:
    """(score(rendered, truth) for HxWx3 images in [0, 1], "") or (None, why not)."""
    try:
        import lpips  # type: ignore[import-not-found]
        import torch
    except ImportError:
        return None, "the lpips package is not installed on this host (pip install lpips, as svox2's hosts have)"
    try:
        net = lpips.LPIPS(net="vgg", verbose=False).eval()
    except Exception as exc:  # noqa: BLE001 - typically no VGG weights and no way to download them
        return None, f"lpips could not load its VGG weights here ({type(exc).__name__}: {exc})"

    def score(rendered: np.ndarray, truth: np.ndarray) -> float:
        def as_tensor(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None] * 2 - 1

        with torch.no_grad():
            return float(net(as_tensor(rendered), as_tensor(truth)).item())

    return score, ""
