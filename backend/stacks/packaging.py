"""Package shipped code (like `sam package`): deterministic zips named by content, uploaded once."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.paths import PROJECT_ROOT

_EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: same sources, same bytes, same key


@dataclass(frozen=True)
class Artifact:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        return f"artifacts/{self.name}-{self.sha256[:16]}.zip"


def _zip(packages: list[str], root: Path = PROJECT_ROOT) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in packages:
            base = root / package
            if not base.is_dir():
                raise FileNotFoundError(f"cannot package {package}: {base} is missing")
            for path in sorted(base.rglob("*")):
                if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                    continue
                info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def lambda_package() -> Artifact:
    """Everything that runs inside Lambda: the `lambda_src` package."""
    return Artifact("lambda", _zip(["lambda_src"]))


def executor_package() -> Artifact:
    """The GPU executor and the job code it shares with the API."""
    return Artifact("executor", _zip(["gpu_executor", "lambda_src"]))


def upload(s3: Any, bucket: str, artifact: Artifact) -> str:
    """Upload unless an object with that content-addressed key is already there. Returns the key."""
    try:
        s3.head_object(Bucket=bucket, Key=artifact.key)
        return artifact.key
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=artifact.key, Body=artifact.data, ServerSideEncryption="AES256")
    return artifact.key
