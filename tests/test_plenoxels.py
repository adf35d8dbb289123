"""The Plenoxels engine: renderer against the dense reference, schedule, datasets, svox2 mapping, training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gpu_executor.engines import EngineError, RunContext
from gpu_executor.plenoxels import option_support
from gpu_executor.plenoxels.cameras import look_at, pixel_rays
from gpu_executor.plenoxels.dataset import DatasetError, check_scene, load_split
from gpu_executor.plenoxels.grid import VoxelGrid
from gpu_executor.plenoxels.render import RenderOptions, render, render_dense
from gpu_executor.plenoxels.scene import make_scene
from gpu_executor.plenoxels.train import TrainConfig, Trainer, psnr, render_image, reso_schedule
from gpu_executor.svox2_engine import Svox2Engine, parse_line
from gpu_executor.torch_engine import TorchEngine
from lambda_src.jobs.schema import JobValidationError, parse_job


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scene") / "tiny"
    make_scene("tiny", out, size=32, views=24, test_views=4)
    return out


def _blob_grid(reso: int = 20, seed: int = 0) -> VoxelGrid:
    torch.manual_seed(seed)
    dense = VoxelGrid.dense((reso, reso, reso), 9, 0.0)
    centres = dense.voxel_centres(dense.reso)
    density = torch.relu(30 * (0.6 - centres.norm(dim=1))) * torch.rand(len(centres)) * 3
    values = torch.cat([density[:, None], torch.randn(len(centres), 27) * 0.3], 1)
    return VoxelGrid.from_mask(dense.reso, (density > 0).reshape(dense.reso), values, 9, dense.radius, dense.center)


def _rays(n: int = 24, position=(2.0, 1.0, 1.2)) -> tuple[torch.Tensor, torch.Tensor]:
    o, d = pixel_rays(look_at(np.array(position)), n, n, n * 1.2)
    return torch.tensor(o, dtype=torch.float32), torch.tensor(d, dtype=torch.float32)


# -- renderer --------------------------------------------------------------------------------------
@pytest.mark.parametrize("position", [(2.0, 1.0, 1.2), (0.0, -2.5, 0.3), (0.2, 0.1, 0.0)])
def test_fast_renderer_matches_dense_reference_in_values_and_gradients(position) -> None:
    grid = _blob_grid()
    origins, dirs = _rays(position=position)
    opts = RenderOptions(stop_thresh=0.0, background=1.0)
    fast_data = grid.data.clone().requires_grad_(True)
    ref_data = grid.data.clone().requires_grad_(True)
    fast = render(grid, origins, dirs, opts, data=fast_data)
    ref = render_dense(grid, origins, dirs, opts, data=ref_data)
    assert (ref - 1.0).abs().max() > 0.2  # the blob is visible: the comparison means something
    assert torch.allclose(fast, ref, atol=1e-5)
    target = torch.rand_like(ref)
    ((fast - target) ** 2).mean().backward()
    ((ref - target) ** 2).mean().backward()
    assert ref_data.grad.abs().max() > 1e-4
    assert torch.allclose(fast_data.grad, ref_data.grad, atol=1e-6)


def test_a_grid_too_large_for_float_cell_indices_renders_the_same_through_integer_indices(monkeypatch) -> None:
    # past 2^24 cells (a 257^3 grid) the candidates' cell index is computed in integers: the same picture
    import gpu_executor.plenoxels.render as rendering

    grid = _blob_grid()
    origins, dirs = _rays()
    opts = RenderOptions(stop_thresh=0.0, background=1.0)
    in_float = render(grid, origins, dirs, opts)
    monkeypatch.setattr(rendering, "FLOAT_EXACT_CELLS", 0)
    assert torch.equal(render(grid, origins, dirs, opts), in_float)

def _shell_grid(reso: tuple[int, int, int] = (12, 10, 14)) -> VoxelGrid:
    """Density only in the outermost voxel layer: occupied cells touch every face of the grid."""
    torch.manual_seed(1)
    dense = VoxelGrid.dense(reso, 9, 0.0)
    idx = torch.stack(torch.meshgrid(*[torch.arange(r) for r in reso], indexing="ij"), -1).reshape(-1, 3)
    shell = ((idx == 0) | (idx == torch.tensor(reso) - 1)).any(1)
    density = torch.where(shell, torch.rand(len(idx)) * 2 + 0.5, torch.zeros(len(idx)))
    values = torch.cat([density[:, None], torch.randn(len(idx), 27) * 0.3], 1)
    return VoxelGrid.from_mask(reso, (density > 0).reshape(reso), values, 9, dense.radius, dense.center)


@pytest.mark.parametrize(
    "position", [(2.0, 1.0, 1.2), (-2.0, -1.0, -1.2), (0.3, 2.2, -0.4), (-0.2, -0.3, 2.4), (2.2, -0.1, 0.1)]
)
def test_fast_renderer_matches_dense_where_occupied_cells_touch_the_grid_faces(position) -> None:
    grid = _shell_grid()
    origins, dirs = _rays(16, position)
    opts = RenderOptions(stop_thresh=0.0)
    fast_data = grid.data.clone().requires_grad_(True)
    ref_data = grid.data.clone().requires_grad_(True)
    fast = render(grid, origins, dirs, opts, data=fast_data)
    ref = render_dense(grid, origins, dirs, opts, data=ref_data)
    assert (ref - 1.0).abs().max() > 0.2
    assert torch.allclose(fast, ref, atol=1e-5), float((fast - ref).abs().max())
    target = torch.rand_like(ref)
    ((fast - target) ** 2).mean().backward()
    ((ref - target) ** 2).mean().backward()
    assert torch.allclose(fast_data.grad, ref_data.grad, atol=1e-6)


def test_early_termination_changes_little_and_skips_samples() -> None:
    grid = _blob_grid()
    grid.data[:-1, 0] *= 20  # nearly opaque: rays stop early
    origins, dirs = _rays()
    from gpu_executor.plenoxels.render import RenderStats

    full, early = RenderStats(), RenderStats()
    a = render(grid, origins, dirs, RenderOptions(stop_thresh=0.0), stats=full)
    b = render(grid, origins, dirs, RenderOptions(stop_thresh=1e-3), stats=early)
    assert early.samples < full.samples * 0.8
    assert torch.allclose(a, b, atol=2e-3)


def test_empty_grid_renders_the_background() -> None:
    grid = VoxelGrid.dense((8, 8, 8), 9, 0.0)
    origins, dirs = _rays(4)
    out = render(grid, origins, dirs, RenderOptions(background=0.0))
    assert torch.equal(out, torch.zeros_like(out))


def test_checkpoint_uses_svox2_layout_and_round_trips(tmp_path: Path) -> None:
    grid = _blob_grid()
    grid.save(tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz") as z:
        assert {"radius", "center", "links", "density_data", "sh_data", "basis_type"} <= set(z.files)
        assert z["links"].shape == (20, 20, 20) and z["links"].dtype == np.int32
        assert (z["links"] == -1).any()  # empty voxels are -1, as svox2 stores them
        assert z["sh_data"].shape[1] == 27 and z["sh_data"].dtype == np.float16
        assert z["density_data"].shape == (grid.n_voxels, 1)
    loaded = VoxelGrid.load(tmp_path / "ckpt.npz")
    origins, dirs = _rays()
    a = render(grid, origins, dirs, RenderOptions())
    b = render(loaded, origins, dirs, RenderOptions())
    assert torch.allclose(a, b, atol=2e-3)  # SH is stored as float16, as svox2 does


def assert_svox2_loads(path: Path) -> None:
    """What svox2's SparseGrid.load and SparseGrid.__init__ require of a checkpoint."""
    with np.load(path) as z:
        assert {"radius", "center", "links", "density_data", "sh_data"} <= set(z.files)
        assert z["radius"].shape == (3,) and z["center"].shape == (3,)
        links, density, sh = z["links"], z["density_data"], z["sh_data"]
        assert links.ndim == 3 and links.dtype == np.int32
        n = density.shape[0]
        assert density.shape == (n, 1) and sh.shape[0] == n and sh.shape[1] % 3 == 0
        basis_dim = sh.shape[1] // 3
        assert 1 <= basis_dim <= 10 and int(basis_dim**0.5) ** 2 == basis_dim, f"svox2 refuses basis_dim {basis_dim}"
        used = links[links >= 0]
        assert links.min() >= -1 and np.array_equal(np.sort(used), np.arange(n)), "each data row linked exactly once"
        assert int(z["basis_type"]) == 1 if "basis_type" in z.files else True


@pytest.mark.parametrize("sh_dim", [1, 4, 9])
def test_every_checkpoint_the_trainer_writes_is_one_svox2_loads(tiny_scene: Path, tmp_path: Path, sh_dim: int) -> None:
    cfg = TrainConfig(
        reso=[[12, 12, 12], [20, 20, 20]], upsamp_every=8, n_iters=12, batch_size=500, sh_dim=sh_dim,
        lambda_tv=0.0, lambda_tv_sh=0.0,
    )  # fmt: skip
    trainer = Trainer(cfg, load_split(tiny_scene, "train"), load_split(tiny_scene, "test"))
    trainer.run()
    assert trainer.grid.reso == (20, 20, 20)
    trainer.grid.save(tmp_path / "ckpt.npz")
    assert_svox2_loads(tmp_path / "ckpt.npz")


@pytest.mark.parametrize("sh_dim,reason", [(16, "basis_dim 1-10"), (5, "square number"), (0, ">= 1")])
def test_a_basis_svox2_would_refuse_is_refused_at_submit(sh_dim: int, reason: str) -> None:
    with pytest.raises(JobValidationError, match=reason) as refused:
        parse_job({"scene": "lego", "config": {"sh_dim": sh_dim}})
    assert refused.value.field == "config.sh_dim"
    with pytest.raises(option_support.UnsupportedOption):
        option_support.check({"sh_dim": 16})


def test_load_refuses_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not an svox2 checkpoint"):
        VoxelGrid.load(tmp_path / "x.npz")


# -- schedule ----------------------------------------------------------------------------------------
def test_reso_schedule_steps_through_grids_every_upsamp_every() -> None:
    reso = [[64, 64, 64], [128, 128, 128], [256, 256, 256]]
    assert reso_schedule(reso, 300, 1200) == [(0, (64, 64, 64)), (300, (128, 128, 128)), (600, (256, 256, 256))]
    assert reso_schedule(reso, 300, 500) == [(0, (64, 64, 64)), (300, (128, 128, 128))]
    assert reso_schedule(reso, 38400, 1000) == [(0, (64, 64, 64))]


@pytest.mark.slow
def test_upsampling_prunes_empty_space_and_keeps_the_picture(tiny_scene: Path) -> None:
    cfg = TrainConfig(
        reso=[[24, 24, 24], [40, 40, 40]], upsamp_every=120, n_iters=121, batch_size=2000, lr_sigma_delay_steps=50,
        lr_sh=0.05, lambda_tv=0.0, lambda_tv_sh=0.0,
    )  # fmt: skip
    train, test = load_split(tiny_scene, "train"), load_split(tiny_scene, "test")
    trainer = Trainer(cfg, train, test)
    trainer.run()
    assert trainer.grid.reso == (40, 40, 40)
    assert trainer.grid.n_voxels < 0.5 * 40**3  # empty space was pruned
    assert trainer.history[-1]["psnr"] > 18


# -- datasets ----------------------------------------------------------------------------------------
def test_loader_reads_the_blender_layout_and_downscales(tiny_scene: Path) -> None:
    split = load_split(tiny_scene, "train")
    assert split.images.shape == (24, 32, 32, 3) and split.images.min() >= 0 and split.images.max() <= 1
    assert split.images[:, 0, 0].min() > 0.99  # transparent corners composited on white
    black = load_split(tiny_scene, "train", white_bkgd=False)
    assert black.images[:, 0, 0].max() < 0.01
    half = load_split(tiny_scene, "test", downscale=2)
    assert half.images.shape[1:3] == (16, 16) and half.focal == pytest.approx(split.focal / 2)
    # svox2's default scene_scale puts the cameras at 2/3 of their distance
    assert np.linalg.norm(split.poses[0][:3, 3]) == pytest.approx(4.0 * 2 / 3, rel=1e-6)
    assert check_scene(tiny_scene) == {"train": 24, "val": 2, "test": 4}


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "transforms_train.json").unlink(), "transforms_train.json: missing"),
        (lambda d: (d / "transforms_train.json").write_text("{not json"), "transforms_train.json: not valid JSON"),
        (lambda d: (d / "train" / "r_3.png").unlink(), "r_3.png: missing"),
        (lambda d: (d / "train" / "r_2.png").write_bytes(b"junk"), "r_2.png: not a readable image"),
        (lambda d: Image.new("RGBA", (20, 20)).save(d / "train" / "r_5.png"), "r_5.png: is 20x20 but"),
        (lambda d: _edit_json(d, lambda j: j.pop("camera_angle_x")), "camera_angle_x must be"),
        (
            lambda d: _edit_json(d, lambda j: j["frames"][1].update(transform_matrix=[[1, 2]])),
            "frames[1]: transform_matrix",
        ),
        (lambda d: _edit_json(d, lambda j: j["frames"][0].update(file_path="../../etc/passwd")), "outside the scene"),
    ],
)
def test_loader_refuses_broken_scenes_naming_the_file(tiny_scene: Path, tmp_path: Path, breakage, message) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_scene, broken)
    breakage(broken)
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_scene(broken)


def _edit_json(root: Path, change) -> None:
    path = root / "transforms_train.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_make_scene_is_deterministic_and_has_semi_transparent_pixels(tmp_path: Path) -> None:
    make_scene("same", tmp_path / "a", size=24, views=3, test_views=2)
    make_scene("same", tmp_path / "b", size=24, views=3, test_views=2)
    a = np.asarray(Image.open(tmp_path / "a" / "train" / "r_1.png"))
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "b" / "train" / "r_1.png")))
    alphas = np.concatenate(
        [np.asarray(Image.open(p))[..., 3].ravel() for p in (tmp_path / "a" / "train").glob("*.png")]
    )
    assert ((alphas > 20) & (alphas < 235)).mean() > 0.01  # the glass sphere, not only edges


# -- option support and the svox2 engine ------------------------------------------------------------------
def test_torch_engine_refuses_options_it_does_not_implement() -> None:
    with pytest.raises(option_support.UnsupportedOption, match="lambda_sparsity.*svox2 engine"):
        option_support.check({"lambda_sparsity": 1e-12})
    with pytest.raises(option_support.UnsupportedOption, match="dataset_type='llff'"):
        option_support.check({"dataset_type": "llff"})
    with pytest.raises(option_support.UnsupportedOption, match="background_nlayers"):
        option_support.check({"background_nlayers": 2})
    notes = option_support.check({"lr_sigma_bg": 1.0, "lr_sigma": 10.0, "last_sample_opaque": False})
    assert notes == ["config.lr_sigma_bg has no effect here: only a background model (background_nlayers > 0) reads it"]


def test_svox2_command_and_config_follow_launch_auto(tmp_path: Path) -> None:
    engine = Svox2Engine(home=Path("/data/svox2"), python="/venv/bin/python")
    cmd = engine.command(Path("/scenes/drums"), Path("/work/j1/svox2"), Path("/work/j1/config.json"))
    assert cmd == [
        "/venv/bin/python", "-u", "/data/svox2/opt/opt.py", "/scenes/drums",
        "-t", "/work/j1/svox2", "-c", "/work/j1/config.json",
    ]  # fmt: skip
    spec = parse_job(
        json.loads((Path(__file__).parent / "fixtures" / "seed_jobs" / "job_training_drums.json").read_text())
    )
    written = json.loads(engine.config_json(spec.config))
    assert written["reso"] == "[[256, 256, 256], [512, 512, 512]]"  # the string svox2's -c parses
    assert written["lr_sigma"] == 30.0 and written["lambda_tv_sh"] == 1e-3
    assert engine.environment("1")["CUDA_VISIBLE_DEVICES"] == "1"
    paths = parse_job(
        {"scene": "/data/drums", "config": {"data_dir": "/data/drums", "train_dir": "/etc", "print_every": 5}}
    )
    written = json.loads(engine.config_json(paths.config))
    assert "data_dir" not in written and "train_dir" not in written and written["print_every"] == 5


def test_every_key_svox2s_loader_takes_is_accepted_and_reso_items_may_be_cubes(tiny_scene: Path) -> None:
    spec = parse_job(
        {"scene": "lego", "config": {"reso": "[16, [24, 24, 24]]", "print_every": 50, "log_mse_image": True,
                                     "tune_mode": False, "perm": False, "eval_every": 2}}
    )  # fmt: skip
    assert spec.config["print_every"] == 50
    notes = option_support.check(spec.config)
    assert any("print_every" in n and "logging" in n for n in notes)
    assert TrainConfig.from_options(spec.config).reso == [[16, 16, 16], [24, 24, 24]]
    with pytest.raises(JobValidationError, match="data_dir"):
        parse_job({"scene": "lego", "config": {"data_dir": "/etc"}})
    with pytest.raises(option_support.UnsupportedOption, match="perm"):
        option_support.check({"perm": True})  # sampling the torch engine does not implement: refused, not ignored


def test_svox2_evaluation_runs_render_imgs_as_the_original_and_reads_its_averages() -> None:
    from gpu_executor.svox2_engine import parse_averages

    engine = Svox2Engine(home=Path("/data/svox2"), python="/venv/bin/python")
    assert engine.eval_command(Path("/w/svox2/ckpt.npz"), Path("/data/drums")) == [
        "/venv/bin/python", "-u", "/data/svox2/opt/render_imgs.py", "/w/svox2/ckpt.npz", "/data/drums",
    ]  # fmt: skip
    # render_imgs.py's --n_eval goes on its command line, never into opt.py's config file (opt.py
    # refuses a key it does not know)
    assert engine.eval_command(Path("/w/c.npz"), Path("/d"), 20)[-2:] == ["--n_eval", "20"]
    spec = parse_job({"scene": "/data/drums", "config": {"n_eval": 20, "lr_sigma": 10.0}})
    assert json.loads(engine.config_json(spec.config)) == {"lr_sigma": 10.0}
    out = "rendering 200 views\n100%|####| 200/200\nAVERAGES\nPSNR: 31.25\nSSIM: 0.953\nLPIPS: 0.048\n"
    assert parse_averages(out) == {"psnr": 31.25, "ssim": 0.953, "lpips": 0.048}
    assert parse_averages("PSNR: 20\n") == {}  # only what follows AVERAGES counts, as in the original


def test_svox2_output_parsing() -> None:
    assert parse_line("epoch 3 psnr=27.41:  42%|####2     | 1070/2560 [00:31<00:44, 33.6it/s]") == {
        "epoch": 3, "psnr_train": 27.41, "batch": 1070, "batches": 2560,
    }  # fmt: skip
    assert parse_line("eval stats: {'mse': 0.0012, 'psnr': 29.203}") == {"psnr": 29.203}
    assert parse_line("Saving ckpt/x/ckpt.npz") is None


def test_svox2_engine_says_why_it_is_unavailable_here() -> None:
    ok, why = Svox2Engine().available()
    assert not ok and ("svox2 is not installed" in why or "CUDA" in why)


# -- training end to end -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_short_training_run_beats_the_untrained_model_by_far(tiny_scene: Path, tmp_path: Path) -> None:
    spec = parse_job(
        {
            "scene": str(tiny_scene),
            "engine": "torch",
            "config": {
                "reso": "[[32, 32, 32]]", "n_iters": 150, "batch_size": 2000, "lr_sigma_delay_steps": 50,
                "lr_sh": 0.05, "lambda_tv": 0.0, "lambda_tv_sh": 0.0,
            },
        }
    )  # fmt: skip
    test = load_split(tiny_scene, "test")
    untrained = VoxelGrid.dense((32, 32, 32), 9, 0.1)
    base = psnr(
        float(np.mean((render_image(untrained, test.rays(0), (32, 32), RenderOptions()) - test.images[0]) ** 2))
    )
    reports: list[dict] = []
    ctx = RunContext("job-e2e", spec, tmp_path / "work", reports.append, lambda: None)
    result = TorchEngine().run(ctx)
    assert result["psnr"] > base + 8, (result, base)
    assert result["psnr"] > 20
    psnrs = [r["psnr"] for r in reports if "psnr" in r]
    assert len(psnrs) >= 2 and psnrs[-1] > psnrs[0]
    steps = [r for r in reports if "iteration" in r]
    assert "eta_s" not in steps[0], "no estimate from the first (slow, dense-grid) step alone"
    etas = [r["eta_s"] for r in steps if "eta_s" in r]
    assert etas and etas[-1] <= min(etas[:-1] or etas) + 1e-9 and etas[-1] < 1.0
    published = Path(result["artifacts"])
    assert {"ckpt.npz", "metrics.json", "turntable.gif", "test"} <= {p.name for p in published.iterdir()}
    assert_svox2_loads(published / "ckpt.npz")
    # LPIPS needs the lpips package and its VGG weights: absent here, so no number, and the reason instead
    assert "lpips" not in result and "lpips" in result["lpips_unavailable"]
    # the reason names the fix: the two packages from PyTorch's CPU index, matched to the pinned torch
    assert "pip install lpips==0.1.4 torchvision==0.28.0" in result["lpips_unavailable"]
    assert any(n.startswith("no LPIPS for this job") for n in ctx.notes)
    metrics = json.loads((published / "metrics.json").read_text())
    assert metrics["grid"]["reso"] == [32, 32, 32] and metrics["ssim"] > 0.5 and metrics["train_s"] > 0
    assert Image.open(published / "turntable.gif").n_frames == 24


def test_torch_engine_fails_clearly_on_a_missing_scene(tmp_path: Path) -> None:
    spec = parse_job({"scene": "/data/nonexistent/scene", "engine": "torch"})
    with pytest.raises(EngineError, match="no such directory"):
        TorchEngine().run(RunContext("j", spec, tmp_path, lambda _: None, lambda: None))


def test_sh_bases_are_orthonormal_over_the_sphere() -> None:
    from gpu_executor.plenoxels.sh import eval_sh_bases

    gen = torch.Generator().manual_seed(0)
    dirs = torch.randn(400_000, 3, generator=gen, dtype=torch.float64)
    dirs /= dirs.norm(dim=-1, keepdim=True)
    for dim in (1, 4, 9, 16):
        basis = eval_sh_bases(dim, dirs)
        gram = 4 * np.pi * (basis.T @ basis) / dirs.shape[0]  # Monte Carlo integral over the sphere
        assert torch.allclose(gram, torch.eye(dim, dtype=torch.float64), atol=0.02), dim
    with pytest.raises(ValueError, match="sh_dim"):
        eval_sh_bases(25, dirs[:2])


@pytest.mark.parametrize("scene", ["/", "/etc", "/proc/self/environ", "/data_evil/x"])
def test_host_paths_outside_the_data_roots_are_refused_and_reveal_nothing(scene: str, tmp_path: Path) -> None:
    from gpu_executor.storage import LocalStorage, StorageError

    with pytest.raises(JobValidationError, match="under /data/") as refused:
        parse_job({"scene": scene})
    assert refused.value.field == "scene"
    with pytest.raises(StorageError, match="host paths are read under") as hidden:
        LocalStorage(tmp_path).fetch_scene(scene)  # an executor asked directly says the same for all
    assert "no such directory" not in str(hidden.value)


def _svox2_sphere_count(reso: int) -> int:
    """svox2's SparseGrid(use_sphere_bound=True) mask, computed the way its __init__ writes it."""
    count = 0
    for i in range(reso):
        for j in range(reso):
            for k in range(reso):
                # X = arange(reso) - 0.5; points = (1/g - 1) + X * (2/g)
                p = [(1.0 / reso - 1.0) + (n - 0.5) * (2.0 / reso) for n in (i, j, k)]
                count += sum(c * c for c in p) ** 0.5 <= 1.0 + 3**0.5 / reso
    return count


def test_training_starts_inside_svox2s_sphere_unless_nosphereinit(tmp_path: Path) -> None:
    make_scene("sph", tmp_path / "s", size=16, views=2, test_views=1)
    train = load_split(tmp_path / "s", "train")
    test = load_split(tmp_path / "s", "test")
    cfg = TrainConfig.from_options({"reso": "[[24, 24, 24]]", "n_iters": 1})
    grid = Trainer(cfg, train, test).grid
    assert grid.n_voxels == _svox2_sphere_count(24) < 24**3
    assert int(grid.lut[0]) == grid.n_voxels  # the corner voxel is not allocated
    full = Trainer(TrainConfig.from_options({"reso": "[[24, 24, 24]]", "nosphereinit": True}), train, test).grid
    assert full.n_voxels == 24**3


def test_a_ray_stopped_early_gets_no_background_as_in_svox2() -> None:
    # one opaque slab across the middle of a 8^3 grid: behind it the transmittance is ~0.05, under
    # stop_thresh 0.1, so svox2 stops the ray and adds no background; a ray that misses gets it all
    grid = VoxelGrid.dense((8, 8, 8), 1, 0.0)
    grid.data[:-1, 0] = 0.0
    slab = torch.zeros(8, 8, 8, dtype=torch.bool)
    slab[3:5, :, :] = True
    grid.data[:-1][slab.reshape(-1), 0] = 10.0
    opts = RenderOptions(stop_thresh=0.1, background=1.0)
    origins = torch.tensor([[-2.0, 0.0, 0.0], [0.0, -2.0, 5.0]])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    fast = render(grid, origins, dirs, opts)
    dense = render_dense(grid, origins, dirs, opts)
    # SH zero: every sample's colour is 0.5, so a stopped ray is 0.5 x (1 - its transmittance) < 0.5
    # (with the background added it would be 0.5 + 0.5 x transmittance > 0.5)
    assert float(fast[0, 0]) < 0.5 and float(dense[0, 0]) < 0.5
    assert torch.allclose(fast[1], torch.ones(3)) and torch.allclose(dense[1], torch.ones(3))


def test_white_bkgd_false_reads_colours_as_stored_and_keeps_the_background_brightness(tmp_path: Path) -> None:
    make_scene("wb", tmp_path / "s", size=16, views=1, test_views=1)
    frame = json.loads((tmp_path / "s" / "transforms_train.json").read_text())["frames"][0]
    path = tmp_path / "s" / (frame["file_path"].removeprefix("./") + ".png")
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., :3] = (51, 102, 153)  # a transparent pixel's stored colour
    Image.fromarray(rgba, "RGBA").save(path)
    as_stored = load_split(tmp_path / "s", "train", white_bkgd=False).images[0]
    assert np.allclose(as_stored[0, 0], [0.2, 0.4, 0.6], atol=1e-3)  # svox2: gt[..., :3], alpha dropped
    assert np.allclose(load_split(tmp_path / "s", "train").images[0][0, 0], 1.0)  # composited on white
    opts = TrainConfig.from_options({"white_bkgd": False, "background_brightness": 0.7}).render_options()
    assert opts.background == 0.7


def test_the_torch_engines_option_list_matches_its_trainer() -> None:
    from dataclasses import fields

    from gpu_executor.plenoxels.torch_options import TRAINER_FIELDS
    from gpu_executor.plenoxels.train import TrainConfig

    assert {f.name for f in fields(TrainConfig)} == TRAINER_FIELDS


def test_ssim_is_svox2s_definition_borders_and_clamps_included() -> None:
    """Checked against the definition computed another way (scipy, separable, zero 'constant' borders)."""
    import numpy as np
    from scipy.ndimage import correlate1d

    from gpu_executor.plenoxels.train import ssim

    rng = np.random.default_rng(3)
    a = rng.random((48, 64, 3))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    taps = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    taps /= taps.sum()

    def blur(t: np.ndarray) -> np.ndarray:
        return correlate1d(correlate1d(t, taps, axis=1, mode="constant"), taps, axis=0, mode="constant")

    scores = []
    for c in range(3):
        x, y = a[..., c], b[..., c]
        mx, my = blur(x), blur(y)
        vx, vy = np.maximum(blur(x * x) - mx**2, 0), np.maximum(blur(y * y) - my**2, 0)
        cxy = blur(x * y) - mx * my
        cxy = np.sign(cxy) * np.minimum(np.sqrt(vx * vy), np.abs(cxy))
        c1, c2 = 1e-4, 9e-4
        scores.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert ssim(a, b) == pytest.approx(float(np.mean(scores)), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-9)


def test_a_job_is_scored_on_every_test_view_as_render_imgs_scores_it(tmp_path: Path) -> None:
    from gpu_executor.plenoxels.results import evaluate

    make_scene("many", tmp_path / "s", size=16, views=2, test_views=30)
    test = load_split(tmp_path / "s", "test")
    scored = evaluate(VoxelGrid.dense((8, 8, 8), 1, 0.1), test, RenderOptions())
    assert scored["test_views"] == 30 == len(test)  # it stopped at 25 before


@pytest.mark.parametrize(
    ("n_eval", "views"), [(7, list(range(0, 30, 4))), (30, list(range(30))), (100000, list(range(30)))]
)
def test_n_eval_picks_test_views_at_render_imgs_interval(tmp_path: Path, n_eval: int, views: list[int]) -> None:
    """render_imgs.py: img_eval_interval = max(n_images // n_eval, 1); for img_id in range(0, n_images,
    img_eval_interval) (so 30 views with --n_eval 7 score views 0, 4, ..., 28: eight of them)."""
    from gpu_executor.plenoxels.results import evaluate

    make_scene("many", tmp_path / "s", size=16, views=2, test_views=30)
    test = load_split(tmp_path / "s", "test")
    scored = evaluate(VoxelGrid.dense((8, 8, 8), 1, 0.1), test, RenderOptions(), tmp_path / "out", n_eval=n_eval)
    assert scored["test_views"] == len(views)
    assert sorted(int(p.stem.removeprefix("r_")) for p in (tmp_path / "out" / "test").glob("r_*.png")) == views
    assert TrainConfig.from_options(parse_job({"scene": "x", "config": {"n_eval": 7}}).full_config()).n_eval == 7
    with pytest.raises(JobValidationError, match="n_eval"):
        parse_job({"scene": "x", "config": {"n_eval": 0}})


def _msi_reference(links, data, og, dn, delta_scale, reso, log_transmit, step, stop, brightness) -> list[float]:
    """One ray through svox2's render_background_forward, restated line by line in scalars (the kernel
    works in float32 per ray; this in float64), for the vectorised renderer to be checked against."""
    import math

    if log_transmit < -25.0:  # render_background_image_kernel returns before the ray is traced
        return [0.0, 0.0, 0.0]
    bg_reso, nlayers = links.shape[1], data.shape[1]
    origin = [(og[j] + 0.5) * (2.0 / reso[j]) - 1.0 for j in range(3)]  # ray_find_bounds_bg
    direction = [dn[j] * (2.0 / reso[j]) for j in range(3)]
    inorm = 1.0 / math.sqrt(sum(v * v for v in direction))
    world_step = delta_scale * inorm
    direction = [v * inorm for v in direction]
    q2a = 2 * sum(v * v for v in direction)  # ConcentricSpheresIntersector
    qb = 2 * sum(a * b for a, b in zip(origin, direction, strict=True))
    f = qb * qb - 2 * q2a * sum(v * v for v in origin)
    cross = [origin[1] * direction[2] - origin[2] * direction[1], origin[2] * direction[0] - origin[0] * direction[2],
             origin[0] * direction[1] - origin[1] * direction[0]]  # fmt: skip
    inner = max(math.sqrt(sum(v * v for v in cross)) + 1e-3, 1.0)
    invr_last = 1.0 / inner
    n_steps = int(nlayers / step) + 2
    out = [0.0, 0.0, 0.0]

    def one(cell, pos, ch):  # trilerp_bg_one
        def read(u0, u1):
            link = int(links[u0, u1])
            if link < 0:
                return 0.0
            a, b = float(data[link, cell[2], ch]), float(data[link, cell[2] + 1, ch])
            return a + pos[2] * (b - a)

        ny = cell[1] + 1 if cell[1] < bg_reso - 1 else 0
        nx = cell[0] + 1 if cell[0] < 2 * bg_reso - 1 else 0
        ix0 = read(cell[0], cell[1]) + pos[1] * (read(cell[0], ny) - read(cell[0], cell[1]))
        ix1 = read(nx, cell[1]) + pos[1] * (read(nx, ny) - read(nx, cell[1]))
        return ix0 + pos[0] * (ix1 - ix0)

    for i in range(n_steps):
        r = n_steps / (n_steps - i - 0.5)
        det = f + 2 * q2a * r * r
        if r < inner or det < 0:
            continue
        t = (-qb + math.sqrt(det)) / q2a
        p = [origin[j] + t * direction[j] for j in range(3)]
        invr_mid = 1.0 / math.sqrt(sum(v * v for v in p))
        p = [v * invr_mid for v in p]
        lat, lon = math.asin(max(-1.0, min(1.0, p[1]))), math.atan2(p[0], p[2])  # _unitvec2equirect
        pos = [bg_reso * 2 * (0.5 + lon * 0.5 / math.pi), bg_reso * (0.5 - lat / math.pi),
               min(max((1.0 - invr_mid) * nlayers - 0.5, 0.0), nlayers - 1)]  # fmt: skip
        cell = [int(v) for v in pos]
        cell = [min(cell[0], bg_reso * 2 - 1), min(cell[1], bg_reso - 1), min(cell[2], nlayers - 2)]
        pos = [pos[j] - cell[j] for j in range(3)]
        sigma = one(cell, pos, 3)
        if sigma > 0:
            pcnt = (invr_last - invr_mid) * world_step * sigma
            weight = math.exp(log_transmit) * (1 - math.exp(-pcnt))
            log_transmit -= pcnt
            for c in range(3):
                out[c] += weight * max(one(cell, pos, c) * 0.28209479177387814 + 0.5, 0.0)
            if math.exp(log_transmit) < stop:
                break
        invr_last = invr_mid
    return [v + math.exp(log_transmit) * brightness for v in out]


def _background_model(seed: int, bg_reso: int = 6, nlayers: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    links = np.arange(2 * bg_reso * bg_reso, dtype=np.int32).reshape(2 * bg_reso, bg_reso)
    links[rng.random(links.shape) < 0.2] = -1  # columns sparsify_background emptied
    data = np.concatenate(
        [rng.normal(0, 1, (links.size, nlayers, 3)), rng.uniform(-0.5, 3.0, (links.size, nlayers, 1))], -1
    ).astype(np.float32)
    return links, data


@pytest.mark.parametrize("position", [(2.0, 1.0, 1.2), (0.0, -2.5, 0.3), (0.2, 0.1, 0.0)])
def test_the_background_model_renders_as_svox2s_kernel(position) -> None:
    from gpu_executor.plenoxels.background import MsiBackground
    from gpu_executor.plenoxels.render import _ray_setup

    links, data = _background_model(1)
    grid = _blob_grid(12)
    grid.background = MsiBackground.from_arrays(links, data)
    opts = RenderOptions(step_size=0.5, stop_thresh=0.05, background=0.8)
    origins, dirs = _rays(10, position)
    without = VoxelGrid(grid.reso, grid.radius, grid.center, grid.lut, grid.data, grid.basis_dim)
    behind = render(grid, origins, dirs, opts) - render(without, origins, dirs, RenderOptions(step_size=0.5,
                    stop_thresh=0.05, background=0.0))  # fmt: skip
    # the grid's own transmittance per ray, as the cuvol kernel leaves it (-1e3 once stopped)
    black = RenderOptions(step_size=0.5, stop_thresh=0.0, background=1.0)
    transmittance = (render_dense(without, origins, dirs, black) - render_dense(without, origins, dirs,
                     RenderOptions(step_size=0.5, stop_thresh=0.0, background=0.0)))[:, 0]  # fmt: skip
    og, dn, delta_scale = _ray_setup(grid, origins, dirs)
    stopped = 0
    for k in range(origins.shape[0]):
        lt = float(torch.log(transmittance[k].clamp_min(1e-30)))
        if transmittance[k] < opts.stop_thresh:
            lt, stopped = -1e3, stopped + 1
        expected = _msi_reference(links, data, og[k].double().tolist(), dn[k].double().tolist(),
                                  float(delta_scale[k]), grid.reso, lt, 0.5, 0.05, 0.8)  # fmt: skip
        assert np.allclose(behind[k].tolist(), expected, atol=2e-4), (k, behind[k], expected)
    assert 0 < stopped < origins.shape[0] or position == (0.2, 0.1, 0.0)  # both kinds of ray were seen


def test_an_opaque_background_shows_its_colour_and_an_empty_one_the_brightness() -> None:
    from gpu_executor.plenoxels.background import SH_C0, MsiBackground

    links = np.arange(2 * 4 * 4, dtype=np.int32).reshape(8, 4)
    data = np.zeros((32, 3, 4), np.float32)
    data[..., :3] = (np.array([0.9, 0.1, 0.4]) - 0.5) / SH_C0  # colour (0.9, 0.1, 0.4) once rendered
    data[..., 3] = 1e4
    grid = VoxelGrid.dense((8, 8, 8), 1, 0.0)
    origins, dirs = _rays(6, (0.0, 0.3, 3.0))
    grid.background = MsiBackground.from_arrays(links, data)
    opaque = render(grid, origins, dirs, RenderOptions(background=1.0))
    assert torch.allclose(opaque, torch.tensor([0.9, 0.1, 0.4]).expand_as(opaque), atol=1e-3)
    links[:] = -1  # every column emptied: the brightness shows through, as with no model
    grid.background = MsiBackground.from_arrays(links, data)
    assert torch.allclose(render(grid, origins, dirs, RenderOptions(background=0.7)), torch.full((36, 3), 0.7))


def test_a_checkpoint_with_a_background_model_loads_renders_and_saves_it(tmp_path: Path) -> None:
    from gpu_executor.plenoxels.results import evaluate

    grid = VoxelGrid.dense((8, 8, 8), 1, 0.1)
    grid.save(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz") as z:
        keys = dict(z)
    # what svox2 saves for a tnt/custom run: the multi-sphere background beside the grid
    links, data = _background_model(2, bg_reso=4, nlayers=8)
    np.savez(tmp_path / "bg.npz", **keys, background_links=links, background_data=data)
    loaded = VoxelGrid.load(tmp_path / "bg.npz")
    assert loaded.background is not None and loaded.background.nlayers == 8 and loaded.background.reso == 4
    assert VoxelGrid.load(tmp_path / "plain.npz").background is None
    origins, dirs = _rays(6)
    assert not torch.allclose(
        render(loaded, origins, dirs, RenderOptions()), render(grid, origins, dirs, RenderOptions())
    )
    loaded.save(tmp_path / "again.npz")
    with np.load(tmp_path / "again.npz") as z:
        assert np.array_equal(z["background_links"], links) and np.array_equal(z["background_data"], data)
        assert z["background_links"].dtype == np.int32 and z["background_data"].dtype == np.float32
    make_scene("bg", tmp_path / "s", size=16, views=1, test_views=2)
    scored = evaluate(loaded, load_split(tmp_path / "s", "test"), RenderOptions(), tmp_path / "out")
    assert scored["test_views"] == 2 and np.isfinite(scored["psnr"])
    np.savez(tmp_path / "broken.npz", **keys, background_links=links[:3], background_data=data)
    with pytest.raises(ValueError, match=r"background_links must be \[2 \* reso, reso\]"):
        VoxelGrid.load(tmp_path / "broken.npz")


def test_a_grid_past_the_hosts_memory_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    # 512^3 was accepted and allocated reso^3 x 28 floats (~15 GB) before any check: the kernel killed
    # one executor after another, and the job ended "is gone (its process ended)" with no word of memory
    from lambda_src.jobs.memory import GIB, host_bytes, peak_bytes, too_large

    big = {"reso": "[[2048, 2048, 2048]]", "n_iters": 1, "batch_size": 1, "upsamp_every": 1}
    assert peak_bytes(big) > host_bytes()
    make_scene("tiny", tmp_path / "scene", size=16, views=2, test_views=1)
    spec = parse_job({"scene": str(tmp_path / "scene"), "engine": "torch", "config": big})
    reports: list[dict] = []
    with pytest.raises(EngineError, match=r"refused before training: training would need about [\d.]+ GiB"):
        TorchEngine().run(RunContext("j", spec, tmp_path / "work", reports.append, lambda: None))
    assert reports == []  # nothing was trained: not even the stage after loading was reported
    why = too_large({"reso": "[[512, 512, 512]]", "batch_size": 1}, limit=3 * GIB)
    assert why is not None and "more than the 3.0 GiB" in why and "lower reso" in why
    quick = {"reso": "[[64, 64, 64], [128, 128, 128]]", "batch_size": 5000}
    assert too_large(quick, limit=4 * GIB) is None  # the CPU presets fit a small laptop


def test_every_integer_option_has_a_ceiling_svox2_would_run_with() -> None:
    with pytest.raises(JobValidationError, match="batch_size"):
        parse_job({"scene": "lego", "config": {"batch_size": 10**12}})
    with pytest.raises(JobValidationError, match="n_iters"):
        parse_job({"scene": "lego", "config": {"n_iters": 10**9}})
    assert parse_job({"scene": "lego", "config": {"max_grid_elements": 44_000_000}}).config["max_grid_elements"]
