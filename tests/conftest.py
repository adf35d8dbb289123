"""Shared fixtures. Every test gets its own SKYDECK_HOME, so a developer's own config never leaks in.

`cloud` is one real local cloud (moto server + Lambda runtime + API front, in its own process) per
test session with the infra and api stacks deployed; tests that stop or kill a cloud start their own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.context import Context
from backend.core.paths import Home
from backend.localcloud import control

# Test clouds run no executor workers: tests that train start their own executor, and the others
# expect queued jobs to stay queued.
os.environ["SKYDECK_LOCAL_WORKERS"] = "0"
# Host-path scenes are allowed under the data roots only: the tests' scenes live in the temp dir.
os.environ["SKYDECK_DATA_ROOT"] = "/data:" + tempfile.gettempdir()


# Fixtures that stand up a local cloud: a test that uses one runs end to end through it, and carries the
# `slow` marker (`make check` leaves those out; `make test` runs everything).
CLOUD_FIXTURES = frozenset(
    {"cloud", "cloud_home", "fresh", "exec_ctx", "store", "full_cloud", "hostile", "rehearsal", "served", "failed"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLOUD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if "cloud" in request.fixturenames or "cloud_home" in request.fixturenames:
        return  # those tests use the session cloud's home
    monkeypatch.setenv("SKYDECK_HOME", str(tmp_path / "skydeck-home"))
    for var in ("SKYDECK_PROFILE", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def cloud_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("cloud-home")
    old = os.environ.get("SKYDECK_HOME")
    os.environ["SKYDECK_HOME"] = str(root)
    home = Home.from_env()
    control.up(home)
    ctx = Context.create(None, home)
    ctx.stacks.deploy("infra")
    ctx.stacks.deploy("api")
    yield home
    control.down(home)
    if old is None:
        os.environ.pop("SKYDECK_HOME", None)
    else:
        os.environ["SKYDECK_HOME"] = old


@pytest.fixture
def cloud(cloud_home: Home, monkeypatch: pytest.MonkeyPatch) -> Context:
    monkeypatch.setenv("SKYDECK_HOME", str(cloud_home.root))
    return Context.create(None, cloud_home)


SEED_JOBS = sorted((Path(__file__).parent / "fixtures" / "seed_jobs").glob("*.json"))
