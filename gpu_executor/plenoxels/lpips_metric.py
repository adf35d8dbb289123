"""LPIPS, as svox2's render_imgs.py computes it (the `lpips` package, VGG network), when the host has it.

Its weights are not something skydeck can ship: where the package or its VGG weights are missing,
the metric is absent and the reason is recorded instead - a job never reports a made-up number.
The reason names the fix. On a laptop that is the two packages from PyTorch's CPU index (ENABLE);
the VGG weights then come from download.pytorch.org on the first scored job, into TORCH_HOME (the
local cloud's executors keep them in the skydeck home, so once).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Scorer = Callable[[np.ndarray, np.ndarray], float]
# torchvision's CPU build for the pinned torch 2.13.0; lpips 0.1.4 is the version hosts pin
ENABLE = (
    "pip install lpips==0.1.4 torchvision==0.28.0 --extra-index-url https://download.pytorch.org/whl/cpu "
    "into the executor's environment"
)


def lpips_scorer() -> tuple[Scorer | None, str]:
    """(score(rendered, truth) for HxWx3 images in [0, 1], "") or (None, why not)."""
    try:
        import lpips
        import torch
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "lpips"
        return None, f"{missing} is not installed where this executor runs; to score LPIPS: {ENABLE}"
    try:
        net = lpips.LPIPS(net="vgg", verbose=False).eval()
    except Exception as exc:  # noqa: BLE001 - typically no VGG weights and no way to download them
        return None, (
            f"lpips could not load its VGG weights ({type(exc).__name__}: {exc}); they are fetched once from "
            "download.pytorch.org into TORCH_HOME: run one job where that address is reachable"
        )

    def score(rendered: np.ndarray, truth: np.ndarray) -> float:
        def as_tensor(image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None] * 2 - 1

        with torch.no_grad():
            return float(net(as_tensor(rendered), as_tensor(truth)).item())

    return score, ""
