"""Where an executor gets scenes and puts results: the data bucket, laid out as

    s3://BUCKET/scenes/NAME/...            a scene pushed with `skydeck data push DIR --name NAME`
    s3://BUCKET/data/PATH/...              what a host keeps under /data/PATH (the original's layout)
    s3://BUCKET/results/JOB_ID/...         checkpoint, renders, turntable GIF, metrics.json

A job's scene is a NAME (looked up under scenes/), an s3:// URI, or an absolute path on the host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambda_src.jobs.schema import data_roots
from lambda_src.keys import UnsafeKey, local_path

SCENES_PREFIX = "scenes/"
DATA_PREFIX = "data/"  # mirrors the hosts' /data: the fleet copies it there at boot
SCENE_MANIFEST = ".skydeck-manifest.json"  # written last by `data push`: the scene is whole
RESULTS_PREFIX = "results/"
CONTENT_TYPES = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".json": "application/json",
    ".npz": "application/octet-stream",
}


def _host_scene(scene: str) -> Path:
    """A host path, only under the data roots; outside them the answer says nothing about the host."""
    if not (scene.rstrip("/") + "/").startswith(data_roots()):
        raise StorageError(f"scene {scene}: host paths are read under {', '.join(data_roots())} only")
    path = Path(scene)
    if not path.is_dir():
        raise StorageError(f"scene {scene}: no such directory on this host")
    return path


class StorageError(RuntimeError):
    pass


CKPT_NAME = "ckpt.npz"


def _host_checkpoint(ref: str) -> Path:
    """A checkpoint file (or a directory holding ckpt.npz) on the host, under the data roots only."""
    if not (ref.rstrip("/") + "/").startswith(data_roots()):
        raise StorageError(f"checkpoint {ref}: host paths are read under {', '.join(data_roots())} only")
    path = Path(ref)
    if path.is_dir():
        path = path / CKPT_NAME
    if not path.is_file():
        raise StorageError(f"checkpoint {ref}: no such file on this host")
    return path


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


@dataclass
class S3Storage:
    s3: Any  # a boto3 S3 client
    bucket: str | None
    cache: Path

    def _locate(self, scene: str) -> tuple[str, str]:
        if scene.startswith("s3://"):
            bucket, key = split_s3(scene)
            if self.bucket and bucket != self.bucket:
                raise StorageError(f"scene {scene}: scenes are read from the data bucket s3://{self.bucket}/ only")
            return bucket, key.rstrip("/") + "/"
        if not self.bucket:
            raise StorageError(
                f"scene {scene!r} names a pushed scene, but this executor has no data bucket (set BUCKET)"
            )
        return self.bucket, f"{SCENES_PREFIX}{scene}/"

    def fetch_scene(self, scene: str) -> Path:
        if scene.startswith("/"):
            return self._host_or_data_prefix(scene)
        bucket, prefix = self._locate(scene)
        objects = self._list(bucket, prefix)
        if not objects:
            hint = f"push it with: skydeck data push DIR --name {scene}" if not scene.startswith("s3://") else ""
            raise StorageError(f"scene {scene!r}: nothing at s3://{bucket}/{prefix}. {hint}".strip())
        if not scene.startswith("s3://"):
            # a pushed scene is whole once its manifest is there (written last by `data push`)
            if not any(o["Key"] == prefix + SCENE_MANIFEST for o in objects):
                raise StorageError(
                    f"scene {scene!r} is incomplete (its push did not finish, or it was pushed by an older "
                    f"skydeck): push it again with: skydeck data push DIR --name {scene}"
                )
            objects = [o for o in objects if o["Key"] != prefix + SCENE_MANIFEST]
        return self._download(bucket, prefix, objects)

    def _host_or_data_prefix(self, scene: str) -> Path:
        """A data dir on this host, or, where a fresh host lacks it, the same path under the bucket's data/
        prefix (/data/nerf_synthetic/drums -> s3://BUCKET/data/nerf_synthetic/drums/), as the fleet's
        user data copies it at boot."""
        try:
            return _host_scene(scene)
        except StorageError:
            root = next((r for r in data_roots() if (scene.rstrip("/") + "/").startswith(r)), None)
            if root is None or not self.bucket:
                raise
            prefix = f"{DATA_PREFIX}{scene.rstrip('/')[len(root) :]}/"
            objects = self._list(self.bucket, prefix)
            if not objects:
                raise StorageError(
                    f"scene {scene}: no such directory on this host, nor at s3://{self.bucket}/{prefix}. "
                    f"A job on a scene of your own: skydeck data push DIR --name NAME, then --scene NAME; "
                    f"the original's datasets go under s3://{self.bucket}/{DATA_PREFIX} (docs/fleet.md)"
                ) from None
            return self._download(self.bucket, prefix, objects)

    def _list(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects.extend(page.get("Contents", []))
        return objects

    def _download(self, bucket: str, prefix: str, objects: list[dict[str, Any]]) -> Path:
        # every key is placed before the first byte is written: one that would land outside the
        # scene's folder (an absolute part, '..', a symlink) fails the job and writes nothing
        try:
            dest = local_path(self.cache, f"{bucket}/{prefix.strip('/')}")
            targets = [(o["Key"], local_path(dest, o["Key"], prefix)) for o in objects if not o["Key"].endswith("/")]
        except UnsafeKey as exc:
            raise StorageError(f"s3://{bucket}/{prefix}: {exc}; nothing was downloaded") from None
        stamp = dest / ".skydeck-etags.json"
        etags = {o["Key"]: o["ETag"] for o in objects}
        if stamp.exists() and json.loads(stamp.read_text()) == etags:
            return dest  # same objects as last time: the cached copy is current
        for key, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, key, str(target))
        stamp.write_text(json.dumps(etags))
        return dest

    def fetch_checkpoint(self, ref: str) -> Path:
        """A job id (its results/JOB_ID/ckpt.npz), an s3:// URI in the data bucket, or a host path."""
        if ref.startswith("/"):
            return _host_checkpoint(ref)
        if ref.startswith("s3://"):
            bucket, key = split_s3(ref)
            if self.bucket and bucket != self.bucket:
                raise StorageError(f"checkpoint {ref}: read from the data bucket s3://{self.bucket}/ only")
            key = key if key.endswith(".npz") else key.rstrip("/") + "/" + CKPT_NAME
        elif self.bucket:
            bucket, key = self.bucket, f"{RESULTS_PREFIX}{ref}/{CKPT_NAME}"
        else:
            raise StorageError(f"checkpoint {ref!r} names a job's results, but this executor has no data bucket")
        try:
            target = local_path(self.cache / "checkpoints", f"{bucket}/{key}")
        except UnsafeKey as exc:
            raise StorageError(f"checkpoint {ref}: {exc}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.s3.download_file(bucket, key, str(target))
        except Exception as exc:  # noqa: BLE001 - botocore's 404 is a ClientError without a modelled type
            raise StorageError(f"checkpoint {ref}: nothing at s3://{bucket}/{key} ({exc})") from None
        return target

    def put(self, job_id: str, name: str, body: bytes) -> None:
        """One small result file now (the live preview), beside what `publish` uploads at the end."""
        if not self.bucket:
            return
        content_type = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        self.s3.put_object(
            Bucket=self.bucket, Key=f"{RESULTS_PREFIX}{job_id}/{name}", Body=body, ContentType=content_type
        )

    def read(self, job_id: str, name: str) -> bytes | None:
        """A result file published earlier (an earlier attempt's log), or None."""
        if not self.bucket:
            return None
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=f"{RESULTS_PREFIX}{job_id}/{name}")["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def publish(self, job_id: str, root: Path) -> str:
        """Upload every file under `root` to results/JOB_ID/; returns the s3:// prefix."""
        if not self.bucket:
            raise StorageError("this executor has no data bucket for results (set BUCKET)")
        prefix = f"{RESULTS_PREFIX}{job_id}/"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            extra = {"ContentType": CONTENT_TYPES.get(path.suffix, "application/octet-stream")}
            self.s3.upload_file(str(path), self.bucket, prefix + path.relative_to(root).as_posix(), ExtraArgs=extra)
        return f"s3://{self.bucket}/{prefix}"


@dataclass
class LocalStorage:
    """Scenes by absolute path only, results copied under a directory: for hosts without a bucket."""

    results: Path

    def fetch_scene(self, scene: str) -> Path:
        if not scene.startswith("/"):
            raise StorageError(f"scene {scene!r}: without a data bucket only absolute paths to scene directories work")
        return _host_scene(scene)

    def fetch_checkpoint(self, ref: str) -> Path:
        if ref.startswith("/"):
            return _host_checkpoint(ref)
        if ref.startswith("s3://"):
            raise StorageError(f"checkpoint {ref}: this executor has no data bucket to read it from")
        path = self.results / ref / CKPT_NAME
        if not path.is_file():
            raise StorageError(f"checkpoint {ref}: job {ref} left no {CKPT_NAME} here")
        return path

    def put(self, job_id: str, name: str, body: bytes) -> None:
        target = self.results / job_id / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)

    def read(self, job_id: str, name: str) -> bytes | None:
        target = self.results / job_id / name
        return target.read_bytes() if target.is_file() else None

    def publish(self, job_id: str, root: Path) -> str:
        import shutil

        dest = self.results / job_id
        shutil.copytree(root, dest, dirs_exist_ok=True)
        return str(dest)
