"""A bucket key never writes outside its folder; a name never makes such a key; a scene folder's
symlinks never upload what lies outside it. Each case reproduces a write that used to escape."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from backend.context import Context
from backend.core.errors import ConfigError, SkydeckError
from gpu_executor.host.datasets import copy as copy_datasets
from gpu_executor.storage import StorageError
from lambda_src.keys import UnsafeKey, check_name, local_path
from tests.test_cli import run


@pytest.mark.parametrize(
    "key",
    ["scenes/x//tmp/evil", "scenes/x/../../evil", "scenes/x/./a", "scenes/x/a//b", "scenes/x/", "scenes/x/a\x00b"],
)
def test_a_key_that_would_leave_its_folder_is_refused_naming_it(tmp_path: Path, key: str) -> None:
    with pytest.raises(UnsafeKey) as refused:
        local_path(tmp_path / "dest", key, "scenes/x/")
    assert repr(key) in str(refused.value)


def test_a_key_is_placed_inside_and_never_through_a_planted_symlink(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    assert local_path(dest, "scenes/x/train/r_0.png", "scenes/x/") == (dest / "train" / "r_0.png").resolve()
    (dest).mkdir()
    (dest / "train").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(UnsafeKey, match="symlink"):
        local_path(dest, "scenes/x/train/r_0.png", "scenes/x/")


@pytest.mark.parametrize("name", ["../x", "/abs", "a b", "x/y", ".hidden", "", "a" * 65])
def test_names_of_scenes_datasets_and_runs_follow_one_rule(name: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        check_name("dataset", name)


def _put(ctx: Context, key: str, body: bytes = b"escaped") -> None:
    ctx.clients.client("s3").put_object(Bucket=ctx.scenes.bucket, Key=key, Body=body)


def test_the_executor_refuses_a_scene_key_that_names_an_absolute_path(cloud: Context, tmp_path: Path) -> None:
    from gpu_executor.plenoxels.scene import make_scene

    make_scene("evil", tmp_path / "scene", size=16, views=3, test_views=1)
    ctx = cloud
    ctx.scenes.push(tmp_path / "scene", "evilscene")
    escape = tmp_path / "x" / "exec_escape.txt"
    _put(ctx, f"scenes/evilscene/{escape}")  # scenes/evilscene//tmp/.../exec_escape.txt
    with pytest.raises(StorageError, match="refused key .*absolute path.*nothing was downloaded"):
        ctx.scenes.storage(tmp_path / "cache").fetch_scene("evilscene")
    assert not escape.exists()


def test_jobs_fetch_refuses_a_result_key_outside_out_and_writes_nothing(cloud: Context, tmp_path: Path) -> None:
    job = "0badbeef-0000-4000-8000-000000000001"
    escape = tmp_path / "abs" / "path"
    _put(cloud, f"results/{job}/metrics.json", b"{}")
    _put(cloud, f"results/{job}/{escape}")
    with pytest.raises(SkydeckError, match="absolute path"):
        cloud.scenes.fetch(job, tmp_path / "out")
    assert not escape.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("tail", ["../../x", "/abs/x"])
def test_sdsinf_fetch_refuses_a_run_key_outside_out(cloud: Context, tmp_path: Path, tail: str) -> None:
    from backend.sdsinf.results import fetch

    s3, bucket, run_id = cloud.clients.client("s3"), cloud.scenes.bucket, f"20261203-1920-{len(tail)}"
    s3.put_object(Bucket=bucket, Key=f"runs/{run_id}/summary.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key=f"runs/{run_id}/{tail.lstrip('/') if tail.startswith('..') else tail}",
                  Body=b"escaped")  # fmt: skip
    out = tmp_path / "deep" / "out"
    with pytest.raises(SkydeckError, match="refused key"):
        fetch(s3, bucket, run_id, out)
    assert not out.exists() and not (tmp_path / "x").exists() and not Path("/abs/x").exists()
    with pytest.raises(ConfigError, match="run name"):
        fetch(s3, bucket, "../runs", out)


def test_sdsinf_data_upload_refuses_a_name_that_is_not_one_path_part(cloud_home, tmp_path: Path) -> None:  # noqa: ANN001
    for name in ("../x", "/abs", "a b", "x/y"):
        refused = run(cloud_home.root, "sdsinf", "data", "upload", "--data", str(tmp_path), "--name", name)
        assert refused.returncode == 2 and "--name" in refused.stderr and "Traceback" not in refused.stderr


def test_data_push_refuses_a_symlink_out_of_the_scene_folder(cloud: Context, tmp_path: Path) -> None:
    from gpu_executor.plenoxels.scene import make_scene

    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = not-for-the-bucket")
    make_scene("links", tmp_path / "scene", size=16, views=3, test_views=1)
    os.symlink(secret, tmp_path / "scene" / "train" / "secret.png")
    with pytest.raises(ConfigError, match=r"secret\.png is a symlink to .*credentials, outside the scene folder"):
        cloud.scenes.push(tmp_path / "scene", "linkscene")
    keys = cloud.clients.client("s3").list_objects_v2(Bucket=cloud.scenes.bucket, Prefix="scenes/linkscene/")
    assert keys.get("KeyCount", 0) == 0, "a refused push uploaded something"
    # a link that stays inside the folder is the file it points at
    (tmp_path / "scene" / "train" / "secret.png").unlink()
    os.symlink(tmp_path / "scene" / "train" / "r_0.png", tmp_path / "scene" / "train" / "copy.png")
    assert cloud.scenes.push(tmp_path / "scene", "linkscene").files > 0


def test_the_boot_dataset_copy_refuses_keys_outside_data(cloud: Context, tmp_path: Path) -> None:
    _put(cloud, "data/nerf_synthetic/drums/transforms_train.json", json.dumps({"frames": []}).encode())
    _put(cloud, f"data/{tmp_path}/boot_escape.txt")
    copied, _, refused = copy_datasets(cloud.clients.client("s3"), cloud.scenes.bucket, tmp_path / "data")
    assert copied >= 1 and refused == [f"data/{tmp_path}/boot_escape.txt"]
    assert (tmp_path / "data" / "nerf_synthetic" / "drums" / "transforms_train.json").exists()
    assert not (tmp_path / "boot_escape.txt").exists()


def test_an_interrupted_push_leaves_a_scene_no_one_takes_for_whole(cloud: Context, tmp_path: Path) -> None:
    from backend.core.errors import NotFoundError
    from gpu_executor.plenoxels.scene import make_scene

    make_scene("half", tmp_path / "scene", size=16, views=4, test_views=1)
    s3, bucket = cloud.clients.client("s3"), cloud.scenes.bucket
    # what a push killed midway leaves: some of the files, no manifest
    for path in sorted((tmp_path / "scene").rglob("*.json"))[:1]:
        s3.upload_file(str(path), bucket, f"scenes/halfscene/{path.relative_to(tmp_path / 'scene').as_posix()}")
    listed = {s["name"]: s for s in cloud.scenes.list()}
    assert listed["halfscene"]["complete"] is False
    with pytest.raises(NotFoundError, match="incomplete.*push it again"):
        cloud.scenes.check_exists("halfscene")
    with pytest.raises(StorageError, match="incomplete"):
        cloud.scenes.storage(tmp_path / "cache").fetch_scene("halfscene")
    shown = run(cloud.home.root, "data", "list")
    assert "halfscene" in shown.stdout and "incomplete" in shown.stdout
    # the whole push makes it whole, and a new push hides it again until it is done
    cloud.scenes.push(tmp_path / "scene", "halfscene")
    assert {s["name"]: s for s in cloud.scenes.list()}["halfscene"]["complete"] is True
    cloud.scenes.check_exists("halfscene")
    assert cloud.scenes.storage(tmp_path / "cache").fetch_scene("halfscene").is_dir()


def test_jobs_fetch_does_not_replace_files_already_in_out_without_overwrite(cloud: Context, tmp_path: Path) -> None:
    job = "0badbeef-0000-4000-8000-000000000002"
    _put(cloud, f"results/{job}/metrics.json", b'{"psnr": 30}')
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("the operator's own notes")
    refused = run(cloud.home.root, "jobs", "fetch", job, "--out", str(out))
    assert refused.returncode == 2 and "already holds 1 of this job's files (metrics.json)" in refused.stderr
    assert (out / "metrics.json").read_text() == "the operator's own notes"
    replaced = run(cloud.home.root, "jobs", "fetch", job, "--out", str(out), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((out / "metrics.json").read_text()) == {"psnr": 30}


def test_fetching_a_running_job_says_the_files_are_only_those_so_far(cloud: Context, tmp_path: Path) -> None:
    from lambda_src.jobs.schema import parse_job

    store = cloud.jobs.store
    job = store.submit(parse_job({"scene": "lego"})).job_id
    store.claim(job, "w-running")
    _put(cloud, f"results/{job}/job.log", b"claimed by w-running\n")
    fetched = run(cloud.home.root, "jobs", "fetch", job, "--out", str(tmp_path / "early"))
    assert fetched.returncode == 0 and f"job {job} is RUNNING: these are its files so far" in fetched.stderr
    shown = run(cloud.home.root, "jobs", "fetch", job, "--out", str(tmp_path / "again"), "--json")
    assert json.loads(shown.stdout)["state"] == "RUNNING"
