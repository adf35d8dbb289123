"""The numpy/scipy Lambda layer the SDS-Inf functions import (the deploy step builds it).

Lambda's Python runtime has neither numpy nor scipy. `build_layer` asks pip for the manylinux
wheels of the Lambda runtime's Python (never compiling anything), unpacks them under `python/` in
a zip - the layout Lambda puts on sys.path - and caches the zip by its inputs, so a redeploy reuses
it. `publish_layer` uploads it to the artifacts bucket and publishes a layer version. On the local
cloud the layer is a manifest of the same pins, which the local Lambda runtime fills from this
installation's numpy and scipy (backend/localcloud/lambda_sandbox.py): a handler that imports numpy
without the layer fails there as it fails on AWS.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from backend.core.errors import SkydeckError

PACKAGES = ("numpy>=1.26,<3", "scipy>=1.12,<2")
RUNTIME = "python3.12"
PLATFORM = "manylinux2014_x86_64"
LAYER_LIMIT_BYTES = 250 * 1024 * 1024  # Lambda's unzipped limit for a function and its layers
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


class LayerBuildError(SkydeckError):
    exit_code = 1


def layer_key(packages: tuple[str, ...] = PACKAGES, runtime: str = RUNTIME, platform: str = PLATFORM) -> str:
    return hashlib.sha256("|".join((*packages, runtime, platform)).encode()).hexdigest()[:16]


def assemble_layer(wheels: Path, out: Path) -> tuple[int, int]:
    """Unpack every wheel in `wheels` under python/ in the zip `out`; returns (files, unzipped bytes)."""
    entries: dict[str, bytes] = {}
    for wheel in sorted(wheels.glob("*.whl")):
        try:
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    if info.is_dir() or ".." in info.filename.split("/"):
                        continue
                    entries[f"python/{info.filename}"] = zf.read(info)
        except zipfile.BadZipFile:
            raise LayerBuildError(f"{wheel}: not a valid wheel") from None
    if not entries:
        raise LayerBuildError(f"no wheels in {wheels}")
    unzipped = sum(len(b) for b in entries.values())
    if unzipped > LAYER_LIMIT_BYTES:
        raise LayerBuildError(f"the layer unzips to {unzipped / 1e6:.0f} MB, over Lambda's 250 MB limit")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):  # fixed order and timestamps: the same wheels give the same zip
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name])
    return len(entries), unzipped


def build_layer(cache: Path, pip: tuple[str, ...] = (sys.executable, "-m", "pip")) -> Path:
    """The layer zip for the Lambda runtime (cached under `cache` by packages, runtime and platform)."""
    out = cache / f"numpy-scipy-{layer_key()}.zip"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            *pip, "download", "--quiet", "--only-binary=:all:", "--platform", PLATFORM,
            "--python-version", RUNTIME.removeprefix("python"), "--implementation", "cp", "--dest", tmp, *PACKAGES,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise LayerBuildError(f"pip could not fetch the {RUNTIME} wheels for numpy/scipy: {tail}")
        assemble_layer(Path(tmp), out)
    return out


def publish_layer(lambda_client: Any, s3: Any, bucket: str, name: str, zip_path: Path) -> str:
    """Upload the zip to the bucket and publish it as a layer version; returns its ARN."""
    key = f"artifacts/layers/{zip_path.name}"
    s3.upload_file(str(zip_path), bucket, key)
    resp = lambda_client.publish_layer_version(
        LayerName=name,
        Description="numpy and scipy for skydeck's SDS-Inf functions",
        Content={"S3Bucket": bucket, "S3Key": key},
        CompatibleRuntimes=[RUNTIME],
    )
    return resp["LayerVersionArn"]
