"""A home written by an earlier release is read by this one without failing its work: the scene that
release pushed (before manifests) is given its manifest at `local up`, which says so, and the jobs
queued for it then run to SUCCEEDED instead of failing at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.context import Context
from backend.core.paths import Home
from backend.core.profiles import Profile
from gpu_executor.engines import builtin_engines
from gpu_executor.executor import Executor, ExecutorConfig

FIXTURE = Path(__file__).parent / "fixtures" / "home-before-manifests"

pytestmark = pytest.mark.slow


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SKYDECK_HOME": str(home), "SKYDECK_LOCAL_WORKERS": "0", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_jobs_queued_before_an_upgrade_run_on_a_scene_pushed_before_manifests(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home, ignore=shutil.ignore_patterns("README.md"))
    up = _cli(home, "local", "up")
    try:
        assert up.returncode == 0, up.stderr
        assert "upgraded: scene local:tiny (pushed by an earlier release) was given its manifest" in up.stdout
        listed = _cli(home, "data", "list")
        assert "tiny" in listed.stdout and "incomplete" not in listed.stdout
        ctx = Context(home=Home(home), profile=Profile(name="local"))
        store = ctx.jobs.store
        queued = [j for j in store.list(limit=10).items if j.state == "QUEUED"]
        assert sorted(j.name or "" for j in queued) == ["carried-1", "carried-2"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SKYDECK_HOME", str(home))
            executor = Executor(
                store, builtin_engines(), ExecutorConfig(wait_s=1), storage=ctx.scenes.storage(tmp_path)
            )
            for _ in range(2):
                executor.run(once=True)
        ended = {j.job_id: store.get(j.job_id) for j in queued}
        assert {j.state for j in ended.values()} == {"SUCCEEDED"}, {j.job_id: j.error for j in ended.values()}
        again = _cli(home, "local", "down"), _cli(home, "local", "up")
        assert "upgraded" not in again[1].stdout  # once: the manifest is there now
    finally:
        _cli(home, "local", "down")
