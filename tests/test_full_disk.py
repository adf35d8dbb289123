"""A full disk is named as such, once, with the path and the free space: by the local cloud's answer
(507, which clients do not retry), by every command, and by `local up`, in one line; nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from backend.localcloud.gateway import Gateway
from backend.localcloud.journal import Journal
from backend.localcloud.lambda_runtime import LambdaRuntime

pytestmark = pytest.mark.slow

AUTH = "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"


def test_a_change_the_full_disk_cannot_keep_is_a_507_naming_the_path_and_the_free_space(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    runtime = LambdaRuntime(tmp_path / "lambda", {}, tmp_path / "logs")
    gateway = Gateway(DomainDispatcherApplication(create_backend_app), journal, runtime, "us-east-1")
    try:
        client = Client(gateway)
        client.post("/moto-api/reset")
        gateway.recording = True
        assert client.put("/full-disk", headers={"Authorization": AUTH}).status_code == 200
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLITE_FULL, as a full disk gives it
        answer = client.put("/full-disk/k", data=b"x" * 200_000, headers={"Authorization": AUTH})
        body = answer.get_data(as_text=True)
        assert answer.status_code == 507 and "<Code>InsufficientStorage</Code>" in body
        assert f"the disk holding {tmp_path / 'journal.sqlite'} is full (" in body and "free" in body
        assert "nothing was changed" in body
    finally:
        runtime.shutdown()
        journal.close()


def _mount(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    if not _mount(where, "60m"):
        pytest.skip("cannot mount a small filesystem here (needs root): the 507 test above covers the answer")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SKYDECK_HOME": str(home), "SKYDECK_LOCAL_WORKERS": "0", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=600)


def _fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file (what a push of a big folder, or anything else on the
    same disk, would do); the file is the way to free it again."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return filler


def test_every_command_names_the_full_disk_once_and_nothing_is_lost(small_disk: Path, tmp_path: Path) -> None:
    home = small_disk / "home"
    assert _cli(home, "local", "up").returncode == 0
    try:
        assert _cli(home, "stacks", "deploy", "infra", "--yes").returncode == 0
        scene = tmp_path / "scene"
        assert _cli(home, "data", "make-scene", "big", "--out", str(scene)).returncode == 0
        filler = _fill(small_disk)
        for args in (("data", "push", str(scene), "--name", "big"), ("stacks", "deploy", "api", "--yes")):
            done = _cli(home, *args)
            said = " ".join((done.stdout + done.stderr).split())  # rich wraps long lines
            assert done.returncode == 1, said
            assert said.count(" is full (") == 1 and f"the disk holding {home}" in said, said
            assert "internal error" not in said and "Traceback" not in said
        assert _cli(home, "local", "down").returncode == 0
        refused = _cli(home, "local", "up")
        said = " ".join(refused.stderr.split())
        assert refused.returncode == 1 and "Traceback" not in said and said.count(" is full (") == 1
        assert f"the disk holding {home} is full" in said
        filler.unlink()  # space again: the same home starts, with what it held before
        assert _cli(home, "local", "up").returncode == 0
        listed = _cli(home, "stacks", "list")
        assert "CREATE_COMPLETE" in listed.stdout, listed.stdout  # the infra stack came back from the journal
    finally:
        _cli(home, "local", "down")
