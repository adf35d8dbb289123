"""The svox2 options the torch engine implements: its trainer's config fields, and two it reads through
the dataset (`dataset_type`: NeRF-synthetic only; `epoch_size`: random batches every step are svox2's
epochs in expectation).

Kept apart from the trainer, which imports torch, so that a submit can check a job against the torch
engine without loading it; a test holds this list equal to `TrainConfig`'s fields.
"""

from __future__ import annotations

TRAINER_FIELDS = frozenset(
    {
        "background_brightness",
        "batch_size",
        "density_thresh",
        "init_sigma",
        "lambda_l2_sh",
        "lambda_tv",
        "lambda_tv_sh",
        "lr_decay",
        "lr_fg_begin_step",
        "lr_sh",
        "lr_sh_decay_steps",
        "lr_sh_delay_mult",
        "lr_sh_delay_steps",
        "lr_sh_final",
        "lr_sigma",
        "lr_sigma_decay_steps",
        "lr_sigma_delay_mult",
        "lr_sigma_delay_steps",
        "lr_sigma_final",
        "max_grid_elements",
        "n_iters",
        "n_eval",
        "n_train",
        "near_clip",
        "nosphereinit",
        "reso",
        "rms_beta",
        "scale",
        "scene_scale",
        "sh_dim",
        "sh_optim",
        "sigma_optim",
        "sigma_thresh",
        "step_size",
        "stop_thresh",
        "thresh_type",
        "tv_contiguous",
        "tv_decay",
        "tv_early_only",
        "tv_sh_sparsity",
        "tv_sparsity",
        "upsamp_every",
        "upsample_density_add",
        "weight_decay_sh",
        "weight_decay_sigma",
        "weight_thresh",
        "white_bkgd",
    }
)
IMPLEMENTED = TRAINER_FIELDS | {"dataset_type", "epoch_size"}
