"""An installed skydeck (a wheel, outside the checkout) carries its templates and presets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and installs it in a fresh environment

ROOT = Path(__file__).resolve().parents[1]


def test_a_built_wheel_runs_outside_the_checkout(tmp_path: Path) -> None:
    # built from a copy: setuptools leaves build/ and *.egg-info beside the sources it builds
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", ".*cache")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("skydeck-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # the top-level stacks/ and presets/ travel inside the package, where an installed skydeck looks for them
    assert {f"backend/bundled/stacks/{s}.yaml" for s in ("infra", "api", "fleet", "sdsinf")} <= set(names)
    assert "backend/bundled/presets/plenoxels/syn.yaml" in names
    assert not [n for n in names if n.startswith("tests/")]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the unpacked wheel comes first on the path, ahead of the checkout's editable install
    env = {**os.environ, "PYTHONPATH": str(site), "SKYDECK_HOME": str(tmp_path / "home")}
    probe = subprocess.run(
        [sys.executable, "-c", "import backend, json; from backend.core.paths import stacks_dir; "
         "print(json.dumps([backend.__file__, str(stacks_dir())]))"],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=60,
    )  # fmt: skip
    module, stacks = json.loads(probe.stdout)
    assert module.startswith(str(site)) and stacks.startswith(str(site))
    presets = subprocess.run(
        [sys.executable, "-m", "cli", "presets", "list", "--json"],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=60,
    )  # fmt: skip
    assert presets.returncode == 0, presets.stderr
    assert "syn-cpu-quick" in [p["name"] for p in json.loads(presets.stdout)]

    # and it deploys a stack on a local cloud it starts itself, templates and code from the wheel
    try:
        up = subprocess.run(
            [sys.executable, "-m", "cli", "local", "up", "--workers", "0"],
            capture_output=True, text=True, cwd=elsewhere, env=env, timeout=180,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        deployed = subprocess.run(
            [sys.executable, "-m", "cli", "stacks", "deploy", "infra", "--json"],
            capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        assert json.loads(deployed.stdout)["status"] == "CREATE_COMPLETE"
    finally:
        subprocess.run([sys.executable, "-m", "cli", "local", "down"], cwd=elsewhere, env=env, timeout=60)
