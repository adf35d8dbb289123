"""Real spherical-harmonic bases in svox2's order and sign convention (degrees 0-3)."""

from __future__ import annotations

import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)
SUPPORTED_DIMS = (1, 4, 9, 16)


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
            if basis_dim > 9:
                xx, yy, zz = x * x, y * y, z * z
                out[..., 9] = C3[0] * y * (3 * xx - yy)
                out[..., 10] = C3[1] * x * y * z
                out[..., 11] = C3[2] * y * (4 * zz - xx - yy)
                out[..., 12] = C3[3] * z * (2 * zz - 3 * xx - 3 * yy)
                out[..., 13] = C3[4] * x * (4 * zz - xx - yy)
                out[..., 14] = C3[5] * z * (xx - yy)
                out[..., 15] = C3[6] * x * (xx - 3 * yy)
    return out
