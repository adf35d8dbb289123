"""Training through the local cloud: scenes pushed to the data bucket, an executor training a job
to SUCCEEDED with live progress, results in the bucket and fetched back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.context import Context
from backend.core.paths import Home
from backend.core.profiles import Profile
from gpu_executor.engines import builtin_engines, choose
from gpu_executor.executor import Executor, ExecutorConfig
from lambda_src.jobs.schema import parse_job
from tests.conftest import SEED_JOBS
from tests.helpers import api, http
from tests.test_cli import run

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own


@pytest.fixture(scope="module")
def train_ctx(cloud_home: Home) -> Context:
    ctx = Context(home=cloud_home, profile=Profile(name="traintest", stack_prefix="traintest"))
    ctx.stacks.deploy("infra")
    return ctx


def test_make_scene_and_push_with_the_cli(cloud_home: Home, tmp_path: Path) -> None:
    home = cloud_home.root
    made = run(home, "data", "make-scene", "clitiny", "--out", str(tmp_path / "s"), "--size", "24", "--views", "6",
               "--test-views", "2", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["views"] == {"train": 6, "val": 1, "test": 2}
    pushed = run(home, "data", "push", str(tmp_path / "s"), "--name", "clitiny", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["files"] == 6 + 1 + 2 + 3
    listed = json.loads(run(home, "data", "list", "--json").stdout)
    assert "clitiny" in [s["name"] for s in listed]
    (tmp_path / "s" / "train" / "r_4.png").unlink()
    refused = run(home, "data", "push", str(tmp_path / "s"), "--name", "clitiny")
    assert refused.returncode == 2 and "r_4.png: missing" in refused.stderr
    bad_name = run(home, "data", "push", str(tmp_path / "s"), "--name", "no/slashes")
    assert bad_name.returncode == 2 and "--name" in bad_name.stderr


def test_a_pushed_scene_trains_to_succeeded_with_results_in_the_bucket(train_ctx: Context, tmp_path: Path) -> None:
    from gpu_executor.plenoxels.scene import make_scene

    make_scene("tiny", tmp_path / "scene", size=32, views=20, test_views=3)
    train_ctx.scenes.push(tmp_path / "scene", "tiny")
    config = {
        "reso": "[[32, 32, 32]]", "n_iters": 200, "batch_size": 2000, "lr_sigma_delay_steps": 50, "lr_sh": 0.05,
        "lambda_tv": 0.0, "lambda_tv_sh": 0.0,
    }  # fmt: skip
    store = train_ctx.jobs.store
    job_id = store.submit(parse_job({"scene": "tiny", "engine": "torch", "config": config})).job_id
    seen: list[dict] = []
    real_heartbeat = store.heartbeat

    def recording_heartbeat(job, worker, progress=None):  # noqa: ANN001, ANN202 - records what the table got
        item = real_heartbeat(job, worker, progress)
        seen.append(item.progress.to_dict() if item.progress else {})
        return item

    store.heartbeat = recording_heartbeat  # type: ignore[method-assign]
    executor = Executor(
        store,
        builtin_engines(),
        ExecutorConfig(wait_s=1, progress_every_s=0.2),
        worker_id="laptop",
        storage=train_ctx.scenes.storage(tmp_path / "cache"),
    )
    executor.run(once=True)
    job = store.get(job_id)
    assert job.state == "SUCCEEDED", job.error
    result = job.result.to_dict()
    assert result["engine"] == "torch" and result["psnr"] > 20
    assert result["artifacts"] == f"s3://{train_ctx.scenes.bucket}/results/{job_id}/"
    psnrs = [p["psnr"] for p in seen if "psnr" in p]
    assert psnrs, "the job item never carried a held-out PSNR while it ran"
    # where the time went, phase by phase, in the order they ran; together no more than the whole job
    phases = result["phases_s"]
    assert list(phases) == ["queued", "load", "train", "evaluate", "render", "upload"]
    assert all(v >= 0 for v in phases.values()) and phases["train"] > 0
    assert sum(v for k, v in phases.items() if k != "queued") <= result["elapsed_s"] + 0.05
    names = {o["name"] for o in train_ctx.scenes.results(job_id)}
    assert {"ckpt.npz", "metrics.json", "turntable.gif", "test/r_0.png", "preview.png"} <= names
    log = train_ctx.scenes.read_result(job_id, "job.log").decode()
    assert "claimed by laptop" in log and "engine torch" in log and "progress iteration=" in log
    assert log.rstrip().splitlines()[-1].split(" ", 2)[-1].startswith("SUCCEEDED")
    files = train_ctx.scenes.fetch(job_id, tmp_path / "fetched")
    assert (tmp_path / "fetched" / "metrics.json") in files
    assert json.loads((tmp_path / "fetched" / "metrics.json").read_text())["psnr"] == pytest.approx(
        result["psnr"], abs=1e-3
    )


def test_missing_scene_fails_the_job_with_the_push_command(train_ctx: Context, tmp_path: Path) -> None:
    store = train_ctx.jobs.store
    job_id = store.submit(parse_job({"scene": "nosuchscene", "engine": "torch"})).job_id
    executor = Executor(store, builtin_engines(), ExecutorConfig(wait_s=1), storage=train_ctx.scenes.storage(tmp_path))
    executor.run(once=True)
    job = store.get(job_id)
    assert job.state == "FAILED"
    assert "skydeck data push DIR --name nosuchscene" in job.error
    log = train_ctx.scenes.read_result(job_id, "job.log").decode()
    assert "FAILED: scene 'nosuchscene'" in log


def test_the_seed_drums_body_becomes_a_job_the_torch_engine_takes_here(cloud: Context) -> None:
    url, headers = api(cloud)
    body = next(p for p in SEED_JOBS if p.name == "job_training_drums.json").read_bytes()
    status, created = http("POST", url, body, headers)
    assert status == 200
    job = cloud.jobs.get(created["job_id"])
    assert job.scene == "/data/nerf_synthetic/drums" and job.engine == "auto"
    engine, note = choose(builtin_engines(), job.engine)
    assert engine.name == "torch"
    assert "svox2" in note and ("GPU" in note or "CUDA" in note)


def test_batch_runs_all_or_none_skips_what_is_done_and_ranks_by_psnr(cloud_home: Home, tmp_path: Path) -> None:
    home = cloud_home.root
    batch = tmp_path / "tune.yaml"
    batch.write_text("preset: syn-cpu-quick\nscenes: [lego]\ngrid:\n  lr_sigma: [10, 30]\nlist:\n  - {lr_sh: 0.02}\n")
    dry = json.loads(run(home, "batch", "run", str(batch), "--dry-run", "--json").stdout)
    assert [j["action"] for j in dry["jobs"]] == ["submit"] * 3 and all(j["job_id"] is None for j in dry["jobs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: syn-cpu-quick\nscenes: [lego]\ngrid:\n  lr_sigma: [10, -1]\n")
    refused = run(home, "batch", "run", str(bad))
    assert refused.returncode == 2 and "lr_sigma" in refused.stderr and "nothing was submitted" in refused.stderr
    first = json.loads(run(home, "batch", "run", str(batch), "--json").stdout)
    ids = [j["job_id"] for j in first["jobs"]]
    assert len(set(ids)) == 3 and all(j["action"] == "submit" for j in first["jobs"])
    again = json.loads(run(home, "batch", "run", str(batch), "--json").stdout)
    assert [j["action"] for j in again["jobs"]] == ["skip (queued)"] * 3
    assert [j["job_id"] for j in again["jobs"]] == ids
    # two finish: the better one leads the board; a failed one is submitted again on the next run
    ctx = Context.create(None, cloud_home)
    store = ctx.jobs.store
    for job_id, state, psnr in ((ids[0], "SUCCEEDED", 29.5), (ids[1], "SUCCEEDED", 31.25), (ids[2], "FAILED", None)):
        store.claim(job_id, "bench-worker")
        store.finish(
            job_id, "bench-worker", state, result={"psnr": psnr} if psnr else None, error=None if psnr else "x"
        )
    board = json.loads(run(home, "batch", "status", str(batch), "--json").stdout)["jobs"]
    assert [r["psnr"] for r in board] == [31.25, 29.5, None]
    assert board[0]["overrides"] == {"lr_sigma": 30}
    third = json.loads(run(home, "batch", "run", str(batch), "--json").stdout)["jobs"]
    assert [j["action"] for j in third] == ["skip (succeeded)", "skip (succeeded)", "submit"]
    assert third[2]["job_id"] != ids[2]


def test_jobs_logs_prints_a_jobs_own_log(cloud_home: Home, tmp_path: Path) -> None:
    from gpu_executor.storage import S3Storage

    ctx = Context.create(None, cloud_home)
    store = ctx.jobs.store
    job_id = store.submit(parse_job({"scene": "logcheck", "engine": "torch"})).job_id
    none_yet = run(cloud_home.root, "jobs", "logs", job_id)
    assert none_yet.returncode == 0 and "no log yet" in none_yet.stderr
    store.claim(job_id, "w")
    store.finish(job_id, "w", "FAILED", error="dataset refused")
    storage = S3Storage(ctx.clients.client("s3"), ctx.scenes.bucket, tmp_path)
    storage.put(job_id, "job.log", b"2026-11-24 10:00:00 claimed by w\n2026-11-24 10:00:01 FAILED: dataset refused\n")
    shown = run(cloud_home.root, "jobs", "logs", job_id, "--follow")  # ended: prints all and returns
    assert shown.returncode == 0 and "claimed by w" in shown.stdout and "FAILED: dataset refused" in shown.stdout


def test_a_validation_only_job_evaluates_a_trained_checkpoint(train_ctx: Context, tmp_path: Path) -> None:
    """The original's validation command (render_imgs.py CKPT DATA_DIR) and skydeck's `checkpoint` key:
    no training, the checkpoint rendered at every test view, PSNR and SSIM recorded, LPIPS or why not."""
    from gpu_executor.plenoxels.scene import make_scene

    make_scene("valtiny", tmp_path / "scene", size=24, views=8, test_views=4)
    train_ctx.scenes.push(tmp_path / "scene", "valtiny")
    store = train_ctx.jobs.store
    config = {"reso": "[[24, 24, 24]]", "n_iters": 60, "batch_size": 1000, "lambda_tv": 0.0, "lambda_tv_sh": 0.0}
    trained = store.submit(parse_job({"scene": "valtiny", "name": "val-exp", "engine": "torch", "config": config}))
    executor = Executor(
        store, builtin_engines(), ExecutorConfig(wait_s=1, progress_every_s=0.2), worker_id="validator",
        storage=train_ctx.scenes.storage(tmp_path / "cache"),
    )  # fmt: skip
    executor.run(once=True)
    assert store.get(trained.job_id).state == "SUCCEEDED"
    # by job id, through the API's own form
    by_id = store.submit(parse_job({"scene": "valtiny", "checkpoint": trained.job_id, "engine": "torch"}))
    # as the original's client sent it: its checkpoint path names the experiment, trained here as a job
    train_ctx.stacks.deploy("api")
    url, headers = api(train_ctx)
    original = {
        "command": ["python", "/data/svox2/opt/render_imgs.py", "/data/svox2/opt/ckpt/$val-exp/ckpt.npz", "valtiny"],
        "config": {},
    }
    status, answer = http("POST", url, json.dumps(original).encode(), headers)
    assert status == 200 and answer["command"] == original["command"], answer
    for _ in range(2):
        executor.run(once=True)
    for job_id in (by_id.job_id, answer["job_id"]):
        job = store.get(job_id)
        assert job.state == "SUCCEEDED", job.error
        result = job.result.to_dict()
        assert result["test_views"] == 4 and 0 < result["ssim"] <= 1 and result["psnr"] > 10, result
        assert "iterations" not in result, "a validation-only job trains nothing"
        assert "lpips" in result or result["lpips_unavailable"], result
        assert result["artifacts"].endswith(f"/results/{job_id}/")
    from_original = store.get(answer["job_id"])
    assert from_original.name == "val-exp".join(["validate-", ""]) and from_original.checkpoint.endswith(
        "$val-exp/ckpt.npz"
    )
    assert any(trained.job_id in n for n in from_original.result.notes)
    # GET at the stage root lists it with the original's validation command
    status, listing = http("GET", url + "?limit=1000", None, headers)
    listed = next(j for j in listing if j["job_id"] == answer["job_id"])
    assert json.loads(listed["command"])[1] == "/data/svox2/opt/render_imgs.py"
    # a checkpoint that names nothing fails the job with the reason, not the executor
    missing = store.submit(parse_job({"scene": "valtiny", "checkpoint": "/data/svox2/opt/ckpt/never-trained"}))
    executor.run(once=True)
    job = store.get(missing.job_id)
    assert job.state == "FAILED" and "no succeeded job is named 'never-trained'" in job.error


def test_a_data_dir_missing_on_a_fresh_host_is_read_from_the_buckets_data_prefix(
    train_ctx: Context, tmp_path: Path
) -> None:
    """The original's jobs name host dirs (/data/nerf_synthetic/drums). A fresh fleet host that lacks
    one reads it from s3://BUCKET/data/nerf_synthetic/drums/, where its user data also copies from."""
    from gpu_executor.plenoxels.scene import make_scene
    from gpu_executor.storage import StorageError

    make_scene("fleetscene", tmp_path / "scene", size=16, views=4, test_views=2)
    s3 = train_ctx.clients.client("s3")
    bucket = train_ctx.scenes.bucket
    for path in (tmp_path / "scene").rglob("*"):
        if path.is_file():
            key = f"data/nerf_synthetic/fleetscene/{path.relative_to(tmp_path / 'scene').as_posix()}"
            s3.upload_file(str(path), bucket, key)
    storage = train_ctx.scenes.storage(tmp_path / "cache")
    got = storage.fetch_scene("/data/nerf_synthetic/fleetscene")
    assert (got / "transforms_train.json").is_file() and (got / "test").is_dir()
    with pytest.raises(
        StorageError, match=r"no such directory on this host, nor at s3://.*/data/nerf_synthetic/nosuch/"
    ):
        storage.fetch_scene("/data/nerf_synthetic/nosuch")
