"""svox2's training options: name, type, default and allowed choices.

The names and defaults are those of svox2's `opt/opt.py` and `opt/util/config_util.py`, so a job
config that svox2 accepts is accepted here, and a key svox2 would refuse is refused here too. That
includes the keys that are command-line switches in svox2 (its loader takes them from the config
file as well): the ones that only steer logging and tuning are passed through to svox2 and noted
by the torch engine; the paths (`data_dir`, `config`, `train_dir`) are the engine's to set - a
`data_dir` must name the job's own scene, the others are recorded and not used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: object
    choices: tuple[str, ...] | None = None


# The loader's own paths: the engine sets them for every run (see ENGINE_PATHS' use in the engines).
ENGINE_PATHS = ("data_dir", "config", "train_dir")
# render_imgs.py's own options, taken by a job for its evaluation: never written to opt.py's config file
# (opt.py refuses a key it does not know), passed to render_imgs.py on its command line.
RENDER_ONLY = ("n_eval",)
# Keys that steer only svox2's logging, checkpoints and tuning runs, never the model it trains.
LOGGING_ONLY = (
    "print_every", "save_every", "eval_every", "log_mse_image", "log_depth_map", "log_depth_map_use_thresh",
    "tune_mode", "tune_nosave",
)  # fmt: skip

OPTIONS: dict[str, Option] = {
    "data_dir": Option("data_dir", str, None),
    # render_imgs.py: "images to evaluate (equal interval), at most evals every image"
    "n_eval": Option("n_eval", int, 100000),
    "config": Option("config", str, None),
    "train_dir": Option("train_dir", str, "ckpt"),
    "perm": Option("perm", bool, False),
    "print_every": Option("print_every", int, 20),
    "save_every": Option("save_every", int, 5),
    "eval_every": Option("eval_every", int, 1),
    "log_mse_image": Option("log_mse_image", bool, False),
    "log_depth_map": Option("log_depth_map", bool, False),
    "log_depth_map_use_thresh": Option("log_depth_map_use_thresh", float, None),
    "tune_mode": Option("tune_mode", bool, False),
    "tune_nosave": Option("tune_nosave", bool, False),
    "dataset_type": Option("dataset_type", str, "auto", ("auto", "nerf", "llff", "nsvf", "co3d")),
    "scene_scale": Option("scene_scale", float, None),
    "scale": Option("scale", float, None),
    "seq_id": Option("seq_id", int, 1000),
    "epoch_size": Option("epoch_size", int, 12800),
    "white_bkgd": Option("white_bkgd", bool, True),
    "llffhold": Option("llffhold", int, 8),
    "normalize_by_bbox": Option("normalize_by_bbox", bool, False),
    "data_bbox_scale": Option("data_bbox_scale", float, 1.2),
    "cam_scale_factor": Option("cam_scale_factor", float, 0.95),
    "normalize_by_camera": Option("normalize_by_camera", bool, True),
    "step_size": Option("step_size", float, 0.5),
    "sigma_thresh": Option("sigma_thresh", float, 1e-08),
    "stop_thresh": Option("stop_thresh", float, 1e-07),
    "background_brightness": Option("background_brightness", float, 1.0),
    "renderer_backend": Option("renderer_backend", str, "cuvol", ("cuvol", "svox1", "nvol")),
    "random_sigma_std": Option("random_sigma_std", float, 0.0),
    "random_sigma_std_background": Option("random_sigma_std_background", float, 0.0),
    "near_clip": Option("near_clip", float, 0.0),
    "use_spheric_clip": Option("use_spheric_clip", bool, False),
    "enable_random": Option("enable_random", bool, False),
    "last_sample_opaque": Option("last_sample_opaque", bool, False),
    "reso": Option("reso", str, "[[256, 256, 256], [512, 512, 512]]"),
    "upsamp_every": Option("upsamp_every", int, 38400),
    "init_iters": Option("init_iters", int, 0),
    "upsample_density_add": Option("upsample_density_add", float, 0.0),
    "basis_type": Option("basis_type", str, "sh", ("sh", "3d_texture", "mlp")),
    "basis_reso": Option("basis_reso", int, 32),
    "sh_dim": Option("sh_dim", int, 9),
    "mlp_posenc_size": Option("mlp_posenc_size", int, 4),
    "mlp_width": Option("mlp_width", int, 32),
    "background_nlayers": Option("background_nlayers", int, 0),
    "background_reso": Option("background_reso", int, 512),
    "n_iters": Option("n_iters", int, 128000),
    "batch_size": Option("batch_size", int, 5000),
    "sigma_optim": Option("sigma_optim", str, "rmsprop", ("sgd", "rmsprop")),
    "lr_sigma": Option("lr_sigma", float, 30.0),
    "lr_sigma_final": Option("lr_sigma_final", float, 0.05),
    "lr_sigma_decay_steps": Option("lr_sigma_decay_steps", int, 250000),
    "lr_sigma_delay_steps": Option("lr_sigma_delay_steps", int, 15000),
    "lr_sigma_delay_mult": Option("lr_sigma_delay_mult", float, 0.01),
    "sh_optim": Option("sh_optim", str, "rmsprop", ("sgd", "rmsprop")),
    "lr_sh": Option("lr_sh", float, 0.01),
    "lr_sh_final": Option("lr_sh_final", float, 5e-06),
    "lr_sh_decay_steps": Option("lr_sh_decay_steps", int, 250000),
    "lr_sh_delay_steps": Option("lr_sh_delay_steps", int, 0),
    "lr_sh_delay_mult": Option("lr_sh_delay_mult", float, 0.01),
    "lr_fg_begin_step": Option("lr_fg_begin_step", int, 0),
    "bg_optim": Option("bg_optim", str, "rmsprop", ("sgd", "rmsprop")),
    "lr_sigma_bg": Option("lr_sigma_bg", float, 3.0),
    "lr_sigma_bg_final": Option("lr_sigma_bg_final", float, 0.003),
    "lr_sigma_bg_decay_steps": Option("lr_sigma_bg_decay_steps", int, 250000),
    "lr_sigma_bg_delay_steps": Option("lr_sigma_bg_delay_steps", int, 0),
    "lr_sigma_bg_delay_mult": Option("lr_sigma_bg_delay_mult", float, 0.01),
    "lr_color_bg": Option("lr_color_bg", float, 0.1),
    "lr_color_bg_final": Option("lr_color_bg_final", float, 5e-06),
    "lr_color_bg_decay_steps": Option("lr_color_bg_decay_steps", int, 250000),
    "lr_color_bg_delay_steps": Option("lr_color_bg_delay_steps", int, 0),
    "lr_color_bg_delay_mult": Option("lr_color_bg_delay_mult", float, 0.01),
    "basis_optim": Option("basis_optim", str, "rmsprop", ("sgd", "rmsprop")),
    "lr_basis": Option("lr_basis", float, 1e-06),
    "lr_basis_final": Option("lr_basis_final", float, 1e-06),
    "lr_basis_decay_steps": Option("lr_basis_decay_steps", int, 250000),
    "lr_basis_delay_steps": Option("lr_basis_delay_steps", int, 0),
    "lr_basis_begin_step": Option("lr_basis_begin_step", int, 0),
    "lr_basis_delay_mult": Option("lr_basis_delay_mult", float, 0.01),
    "rms_beta": Option("rms_beta", float, 0.95),
    "init_sigma": Option("init_sigma", float, 0.1),
    "init_sigma_bg": Option("init_sigma_bg", float, 0.1),
    "thresh_type": Option("thresh_type", str, "weight", ("weight", "sigma")),
    "weight_thresh": Option("weight_thresh", float, 0.256),
    "density_thresh": Option("density_thresh", float, 5.0),
    "background_density_thresh": Option("background_density_thresh", float, 1.000000001),
    "max_grid_elements": Option("max_grid_elements", int, 44000000),
    "lambda_tv": Option("lambda_tv", float, 1e-05),
    "tv_sparsity": Option("tv_sparsity", float, 0.01),
    "tv_logalpha": Option("tv_logalpha", bool, False),
    "lambda_tv_sh": Option("lambda_tv_sh", float, 0.001),
    "tv_sh_sparsity": Option("tv_sh_sparsity", float, 0.01),
    "lambda_tv_lumisphere": Option("lambda_tv_lumisphere", float, 0.0),
    "tv_lumisphere_sparsity": Option("tv_lumisphere_sparsity", float, 0.01),
    "tv_lumisphere_dir_factor": Option("tv_lumisphere_dir_factor", float, 0.0),
    "tv_decay": Option("tv_decay", float, 1.0),
    "lambda_l2_sh": Option("lambda_l2_sh", float, 0.0),
    "tv_early_only": Option("tv_early_only", int, 1),
    "tv_contiguous": Option("tv_contiguous", int, 1),
    "lambda_sparsity": Option("lambda_sparsity", float, 0.0),
    "lambda_beta": Option("lambda_beta", float, 0.0),
    "lambda_tv_background_sigma": Option("lambda_tv_background_sigma", float, 0.01),
    "lambda_tv_background_color": Option("lambda_tv_background_color", float, 0.01),
    "tv_background_sparsity": Option("tv_background_sparsity", float, 0.01),
    "lambda_tv_basis": Option("lambda_tv_basis", float, 0.0),
    "weight_decay_sigma": Option("weight_decay_sigma", float, 1.0),
    "weight_decay_sh": Option("weight_decay_sh", float, 1.0),
    "lr_decay": Option("lr_decay", bool, True),
    "n_train": Option("n_train", int, None),
    "nosphereinit": Option("nosphereinit", bool, False),
}
