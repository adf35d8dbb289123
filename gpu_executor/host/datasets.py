"""Bring s3://BUCKET/data/ to a host's /data at boot, and unpack the original's archives there.

The original's jobs name their data dirs under /data (/data/nerf_synthetic/drums); its hosts got them
from the bucket. This copy uses the executor's own boto3 (no AWS CLI), skips files already present
with the same size, places every key through `lambda_src.keys.local_path` (so a key cannot write
outside /data), and unpacks nerf_synthetic.zip, nerf_llff_data.zip or TanksAndTempleBG.tar.gz with the
same refusal for members that would leave /data.
"""

from __future__ import annotations

import argparse
import shutil
import stat
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import IO, Any

from lambda_src.keys import UnsafeKey, local_path

DATA_PREFIX = "data/"


def copy(s3: Any, bucket: str, dest: Path, prefix: str = DATA_PREFIX) -> tuple[int, int, list[str]]:
    """(files copied, bytes copied, keys refused)."""
    copied = size = 0
    refused: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue  # a folder marker
            try:
                target = local_path(dest, key, prefix)
            except UnsafeKey as exc:
                print(exc, file=sys.stderr)
                refused.append(key)
                continue
            if target.is_file() and target.stat().st_size == obj["Size"]:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            copied += 1
            size += obj["Size"]
    return copied, size, refused


def unpack(dest: Path) -> list[str]:
    """Unpack every archive at the top of `dest`; members already present are left alone. A member that
    would leave `dest`, or is a link or a device, is skipped and named on stderr: one bad member must not
    stop a host's boot, and the rest of its archive is still data."""
    unpacked: list[str] = []
    for archive in sorted(dest.glob("*.zip")) + sorted(dest.glob("*.tar.gz")):
        if archive.name.endswith(".zip"):
            _unpack_zip(archive, dest)
        else:
            _unpack_tar(archive, dest)
        unpacked.append(archive.name)
    shutil.rmtree(dest / "__MACOSX", ignore_errors=True)
    return unpacked


def _unpack_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            if member.is_dir():
                continue
            kind = stat.S_IFMT(member.external_attr >> 16)  # 0 where the archiver kept no Unix mode
            if kind not in (0, stat.S_IFREG):
                _skip(archive, member.filename, "it is a link or a device, not a file")
                continue
            target = _target(archive, dest, member.filename)
            if target is not None and not target.exists():
                with zf.open(member) as src:
                    _write(target, src)


def _unpack_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            if not member.isfile():
                if not member.isdir():
                    _skip(archive, member.name, "it is a link or a device, not a file")
                continue
            target = _target(archive, dest, member.name)
            extracted = tf.extractfile(member) if target is not None and not target.exists() else None
            if target is not None and extracted is not None:
                with extracted as src:
                    _write(target, src)


def _write(target: Path, src: IO[bytes]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        shutil.copyfileobj(src, out)


def _target(archive: Path, dest: Path, name: str) -> Path | None:
    try:
        return local_path(dest, name)
    except UnsafeKey as exc:
        _skip(archive, name, str(exc))
        return None


def _skip(archive: Path, name: str, why: str) -> None:
    print(f"{archive.name}: skipped {name!r}: {why}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_executor.host.datasets", description=__doc__)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    import boto3

    s3 = boto3.session.Session(region_name=args.region).client("s3")
    args.dest.mkdir(parents=True, exist_ok=True)
    copied, size, refused = copy(s3, args.bucket, args.dest)
    unpacked = unpack(args.dest)
    note = f", {len(refused)} unsafe key(s) refused" if refused else ""
    archives = f", unpacked {', '.join(unpacked)}" if unpacked else ""
    print(f"{copied} file(s), {size / 1e6:.1f} MB from s3://{args.bucket}/{DATA_PREFIX}{archives}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
