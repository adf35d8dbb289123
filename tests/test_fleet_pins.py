"""The fleet host's pins resolve against what a DLAMI gives them: its Python (3.11 to 3.13 across the
PyTorch DLAMIs on Amazon Linux 2023) and its numpy, held by setup.sh's constraints. Resolved with pip's
own resolver against PyPI (`pip install --dry-run`, binary wheels for the AMI's platform), nothing
installed; skipped where PyPI cannot be reached."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parents[1] / "gpu_executor" / "host"
# numpy as DLAMIs of torch 2.6 to 2.13 carry it (their constraints hold it; scipy 1.15.3 needs < 2.5)
AMI_NUMPY = ("2.1.3", "2.2.6", "2.4.1")
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

pytestmark = pytest.mark.slow


def _pypi() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/numpy/", timeout=10).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _pypi(), reason="PyPI cannot be reached from here")
@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
@pytest.mark.parametrize("numpy", AMI_NUMPY)
def test_the_hosts_pins_resolve_for_the_amis_python_and_numpy(tmp_path: Path, python: str, numpy: str) -> None:
    constraints = tmp_path / "ami-constraints.txt"
    constraints.write_text(f"numpy=={numpy}\n")
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
         "--disable-pip-version-check", "--only-binary=:all:", "--implementation", "cp",
         "--python-version", python, *platforms, "-c", str(constraints),
         "-r", str(HOST / "requirements-executor.txt"), "-r", str(HOST / "requirements-svox2.txt"), "numpy"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert done.returncode == 0, "\n".join(errors) or done.stderr[-2000:]
