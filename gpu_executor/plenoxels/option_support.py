"""Which svox2 options the torch engine honours, which have no effect here, and which it refuses.

A job's config holds only the options it sets. Each one is either implemented; or has no effect
in the situation svox2 itself would ignore it (for example `lr_sigma_bg` without a background
model), which is accepted with a note; or is refused unless it keeps svox2's default, so that a
setting is never silently dropped.
"""

from __future__ import annotations

from typing import Any

from gpu_executor.plenoxels.torch_options import IMPLEMENTED
from lambda_src.jobs.svox2_options import ENGINE_PATHS, LOGGING_ONLY, OPTIONS

# Options svox2 reads only in a situation the torch engine never is in.
INERT = {
    **{k: "only LLFF/NSVF/CO3D datasets read it" for k in (
        "llffhold", "normalize_by_bbox", "data_bbox_scale", "cam_scale_factor", "normalize_by_camera", "seq_id")},
    **{k: "only a background model (background_nlayers > 0) reads it" for k in (
        "background_reso", "bg_optim", "lr_sigma_bg", "lr_sigma_bg_final", "lr_sigma_bg_decay_steps",
        "lr_sigma_bg_delay_steps", "lr_sigma_bg_delay_mult", "lr_color_bg", "lr_color_bg_final",
        "lr_color_bg_decay_steps", "lr_color_bg_delay_steps", "lr_color_bg_delay_mult", "init_sigma_bg",
        "background_density_thresh", "lambda_tv_background_sigma", "lambda_tv_background_color",
        "tv_background_sparsity", "random_sigma_std_background")},
    **{k: "only basis_type 3d_texture or mlp reads it" for k in (
        "basis_reso", "mlp_posenc_size", "mlp_width", "basis_optim", "lr_basis", "lr_basis_final",
        "lr_basis_decay_steps", "lr_basis_delay_steps", "lr_basis_begin_step", "lr_basis_delay_mult",
        "lambda_tv_basis")},
    "tv_lumisphere_sparsity": "only lambda_tv_lumisphere > 0 reads it",
    "tv_lumisphere_dir_factor": "only lambda_tv_lumisphere > 0 reads it",
    "renderer_backend": "the torch engine computes what svox2's cuvol renderer computes",
    **{k: "it steers only svox2's logging, checkpoints or tuning runs" for k in LOGGING_ONLY},
    **{k: "the engine sets the scene, config file and work directory of each run" for k in ENGINE_PATHS},
}  # fmt: skip

# Values the torch engine accepts for some implemented options.
ALLOWED = {
    "dataset_type": ("auto", "nerf"),
    "sh_dim": (1, 4, 9),  # svox2 asserts a square basis_dim of at most 10
    "renderer_backend": ("cuvol",),
}


class UnsupportedOption(ValueError):
    pass


def check(config: dict[str, Any]) -> list[str]:
    """Notes for the job (options that have no effect); raises UnsupportedOption for the first refusal."""
    notes = []
    for key, value in sorted(config.items()):
        if key in ALLOWED and value not in ALLOWED[key]:
            allowed = ", ".join(map(str, ALLOWED[key]))
            raise UnsupportedOption(
                f"config.{key}={value!r}: the torch engine supports {allowed}; "
                "run this job on the svox2 engine (a GPU host) or change the value"
            )
        if key in IMPLEMENTED:
            continue
        if key in INERT:
            notes.append(f"config.{key} has no effect here: {INERT[key]}")
            continue
        if key in OPTIONS and value == OPTIONS[key].default:
            continue
        raise UnsupportedOption(
            f"config.{key}={value!r}: the torch engine does not implement {key}; "
            f"remove it (svox2's default is {OPTIONS[key].default!r}) or run the job on the svox2 engine (a GPU host)"
        )
    scale = config.get("scale")
    if scale is not None and (scale > 1 or abs(1 / scale - round(1 / scale)) > 1e-6):
        raise UnsupportedOption(
            f"config.scale={scale}: the torch engine downscales by whole factors (1, 0.5, 0.25, ...)"
        )
    return notes
