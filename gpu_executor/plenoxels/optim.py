"""svox2's optimisation pieces: the delayed exponential learning-rate schedule and a row-sparse
RMSprop/SGD step that touches only the voxels that received a gradient this step."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def expon_lr(
    lr_init: float, lr_final: float, delay_steps: int, delay_mult: float, max_steps: int
) -> Callable[[int], float]:
    """lr_init at step 0 to lr_final at max_steps, log-linear; eased in over delay_steps (JaxNeRF/svox2)."""

    def at(step: int) -> float:
        if step < 0 or (lr_init == 0.0 and lr_final == 0.0):
            return 0.0
        delay = 1.0
        if delay_steps > 0:
            delay = delay_mult + (1 - delay_mult) * math.sin(0.5 * math.pi * min(max(step / delay_steps, 0.0), 1.0))
        t = min(max(step / max(max_steps, 1), 0.0), 1.0)
        return delay * math.exp(math.log(lr_init) * (1 - t) + math.log(max(lr_final, 1e-30)) * t)

    return at


class SparseRMSprop:
    """One optimiser state per data column group; rows without gradient keep their state untouched."""

    def __init__(self, rows: int, columns: int, beta: float, eps: float = 1e-8) -> None:
        self.avg = torch.zeros(rows, columns)
        self.beta = beta
        self.eps = eps

    def step(
        self, data: torch.Tensor, grad: torch.Tensor, rows: torch.Tensor, cols: slice, lr: float, method: str
    ) -> None:
        if lr == 0.0 or rows.numel() == 0:
            return
        g = grad[rows, cols]
        if method == "sgd":
            data[rows, cols] -= lr * g
            return
        avg = self.avg[rows, cols]
        avg.mul_(self.beta).addcmul_(g, g, value=1.0 - self.beta)
        self.avg[rows, cols] = avg
        data[rows, cols] -= lr * g / (avg.sqrt() + self.eps)
