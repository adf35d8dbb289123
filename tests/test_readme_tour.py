"""The README's headless tour and SDS-Inf commands, run as written on a fresh home (tests/readme_tour.py
names the only differences)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme_tour import README, script, tour

pytestmark = pytest.mark.slow  # a local cloud of its own, a job trained, SDS-Inf runs

ROOT = README.parent


def test_the_readme_names_the_commands_it_is_tested_by() -> None:
    commands = [c.text for c in tour()]
    assert commands[0] == "source .venv/bin/activate" and "skydeck local up" in commands
    assert any(c.startswith("skydeck sdsinf compare") for c in commands)
    assert any(c.startswith("skydeck jobs submit") for c in commands)


@pytest.mark.timeout(1800)
def test_every_command_of_the_readmes_tour_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    # the README is read from the repository's root: the tour finds the venv and the fixtures there,
    # and writes what it makes (demo-scene, results/, gc/, run/) beside them, here a copy's root
    venv = Path(sys.prefix)
    (work / ".venv").symlink_to(venv)
    (work / "tests").symlink_to(ROOT / "tests")
    (work / "tour.sh").write_text(script(tour()))
    drop = ("SKYDECK_HOME", "SKYDECK_PROFILE", "VIRTUAL_ENV", "SKYDECK_LOCAL_WORKERS")  # a new user has none of these
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["TMPDIR"] = str(tmp_path)
    try:
        done = subprocess.run(
            ["bash", "tour.sh"], cwd=work, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
    finally:
        home = (work / "tour-home").read_text().strip() if (work / "tour-home").exists() else ""
        if home:
            subprocess.run(
                [str(venv / "bin" / "skydeck"), "local", "down"],
                env={**env, "SKYDECK_HOME": home}, capture_output=True, timeout=120, check=False,
            )  # fmt: skip
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    assert "README line" not in done.stderr
