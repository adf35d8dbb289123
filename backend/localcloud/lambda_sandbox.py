"""What a Lambda handler's process may see on the local cloud: its package, its layers and the
runtime's boto3, nothing of the operator's virtual environment.

On AWS a Python function's sys.path is its deployment package (/var/task), its layers' `python/`
folders (/opt/python) and the runtime's own boto3 (/var/runtime). Here the handler runs under
`python -I -S` (no site-packages, no PYTHON* variables, no user site) with exactly those three
kinds of folder on its path:

- the package: the function's zip, extracted;
- each layer: the layer version's zip, extracted. A layer skydeck publishes for the local cloud
  carries a manifest instead of wheels (`python/skydeck-local-layer.json`): it names distributions
  (numpy, scipy) and the version ranges the AWS layer is built from, and the runtime links the
  local interpreter's installed copies of exactly those, refusing versions outside the ranges;
- the runtime: boto3, botocore and what they import, linked from this installation, as the Lambda
  runtime ships one pinned boto3.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import json
import os
import tempfile
import threading
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

LOCAL_LAYER_MANIFEST = "python/skydeck-local-layer.json"
# what the Lambda Python runtime ships beside the standard library
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


class SandboxError(RuntimeError):
    """A function's layers cannot be made available (the message says which and why)."""


def _module_paths(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SandboxError(f"{module} is not installed here, so the local Lambda runtime cannot ship it")
    origin = Path(spec.origin)
    return [origin.parent] if origin.name == "__init__.py" else [origin]


def _link_into(target: Path, sources: list[Path]) -> None:
    for source in sources:
        link = target / source.name
        if not link.exists():
            link.symlink_to(source)


def extract_zip(data: bytes, target: Path) -> None:
    """Unpack a deployment package or layer into `target` (made whole, then renamed into place),
    refusing any member that would land outside it."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member in zf.infolist():
            dest = (tmp / member.filename).resolve()
            if not str(dest).startswith(str(tmp.resolve())):
                raise SandboxError(f"refusing zip member outside the package: {member.filename}")
        zf.extractall(tmp)
    with contextlib.suppress(OSError):  # made at the same moment by another worker: theirs is the same
        tmp.rename(target)


def distribution_files(name: str) -> list[Path]:
    """The top-level folders and files one installed distribution put in site-packages."""
    dist = importlib.metadata.distribution(name)
    root = Path(str(dist.locate_file("")))
    tops: set[str] = set()
    for file in dist.files or []:
        first = Path(file).parts[0]
        if first not in ("..", "") and not first.endswith(".pth"):
            tops.add(first)
    return [root / top for top in sorted(tops) if (root / top).exists()]


def materialize_local_layer(manifest: dict[str, object], target: Path) -> None:
    """Link the local interpreter's copies of the manifest's distributions under target/python."""
    python_dir = target / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    requirements = manifest.get("requirements")
    for raw in requirements if isinstance(requirements, list) else []:
        requirement = Requirement(str(raw))
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise SandboxError(
                f"the layer needs {requirement}, which is not installed beside the local cloud"
            ) from None
        if not requirement.specifier.contains(version, prereleases=True):
            raise SandboxError(f"the layer needs {requirement}; the local cloud has {requirement.name} {version}")
        _link_into(python_dir, distribution_files(requirement.name))


class Sandbox:
    """The folders that make up a handler's sys.path, built once each under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def runtime_dir(self) -> Path:
        target = self.root / "runtime"
        with self._lock:
            if not (target / ".complete").exists():
                target.mkdir(parents=True, exist_ok=True)
                for module in RUNTIME_MODULES:
                    _link_into(target, _module_paths(module))
                (target / ".complete").touch()
        return target

    def layer_dir(self, arn: str, code_sha: str, code: bytes) -> Path:
        """A layer version's `python/` folder (extracted, or linked from a local manifest)."""
        name = arn.split(":")[-2] + "-" + arn.split(":")[-1] + "-" + code_sha[:12]
        target = self.root / "layers" / name
        with self._lock:
            if not (target / ".complete").exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    extract_zip(code, target)
                manifest = target / LOCAL_LAYER_MANIFEST
                if manifest.exists():
                    materialize_local_layer(json.loads(manifest.read_text()), target)
                (target / ".complete").touch()
        return target / "python"

    def tmp_dir(self, worker: str) -> Path:
        target = self.root / "tmp" / worker
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o700)
        return target


def local_layer_zip(requirements: tuple[str, ...]) -> bytes:
    """The local cloud's stand-in for the numpy/scipy layer: a manifest of the same pins."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(LOCAL_LAYER_MANIFEST, date_time=(2020, 1, 1, 0, 0, 0))
        zf.writestr(info, json.dumps({"requirements": list(requirements)}, indent=1))
    return buffer.getvalue()
