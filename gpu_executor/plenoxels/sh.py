"""Real spherical-harmonic bases in svox2's order and sign convention (degrees 0-2)."""

from __future__ import annotations

import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SUPPORTED_DIMS = (1, 4, 9)


def eval_sh_bases(basis_dim: int, dirs: torch.Tensor) -> torch.Tensor:
    """[..., basis_dim] basis values for unit directions [..., 3]."""
    if basis_dim not in SUPPORTED_DIMS:
        raise ValueError(f"sh_dim must be one of {SUPPORTED_DIMS}, got {basis_dim}")
    out = torch.empty((*dirs.shape[:-1], basis_dim), dtype=dirs.dtype, device=dirs.device)
    out[..., 0] = C0
    if basis_dim > 1:
        x, y, z = dirs.unbind(-1)
        out[..., 1] = -C1 * y
        out[..., 2] = C1 * z
        out[..., 3] = -C1 * x
        if basis_dim > 4:
            out[..., 4] = C2[0] * x * y
            out[..., 5] = C2[1] * y * z
            out[..., 6] = C2[2] * (2.0 * z * z - x * x - y * y)
            out[..., 7] = C2[3] * x * z
            out[..., 8] = C2[4] * (x * x - y * y)
    return out
