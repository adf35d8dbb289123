"""Scenes and training results in the data bucket: `data push`, `data list`, `jobs fetch`."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.errors import ConfigError, NotFoundError, SkydeckError
from backend.jobs.service import CloudService
from gpu_executor.plenoxels.dataset import DatasetError, check_scene
from gpu_executor.storage import RESULTS_PREFIX, SCENE_MANIFEST, SCENES_PREFIX, S3Storage
from lambda_src.keys import UnsafeKey, check_name, local_path


@dataclass(frozen=True)
class PushResult:
    name: str
    uri: str
    files: int
    bytes: int
    views: dict[str, int]


class Scenes(CloudService):
    @property
    def bucket(self) -> str:
        return self.stacks.outputs("infra")["Bucket"]

    @property
    def s3(self) -> Any:
        return self.clients.client("s3")

    def storage(self, cache: Path) -> S3Storage:
        return S3Storage(self.s3, self.bucket, cache)

    def push(
        self,
        directory: Path,
        name: str,
        on_file: Callable[[str], None] = lambda _: None,
        on_total: Callable[[int], None] = lambda _: None,
    ) -> PushResult:
        """Validate a NeRF-synthetic scene directory, then upload it as scenes/NAME/ (replacing an older copy)."""
        try:
            check_name("scene", name)
        except ValueError as exc:
            raise ConfigError(f"--name: {exc}") from None
        _refuse_links_out_of(Path(directory))
        try:
            views = check_scene(directory)
        except DatasetError as exc:
            raise ConfigError(f"scene refused: {exc}") from None
        files = [p for p in sorted(Path(directory).rglob("*")) if p.is_file() and (p.suffix in (".json", ".png"))]
        on_total(len(files))
        bucket, prefix = self.bucket, f"{SCENES_PREFIX}{name}/"
        manifest_key = prefix + SCENE_MANIFEST
        keep = {prefix + p.relative_to(directory).as_posix() for p in files} | {manifest_key}
        stale = [k for k in self._keys(bucket, prefix) if k not in keep]
        # the scene is invisible from here until its manifest is written last: a push that is
        # interrupted leaves a scene that `data list`, the submit check and the executors call incomplete
        self.s3.delete_object(Bucket=bucket, Key=manifest_key)
        total = 0
        sizes: dict[str, int] = {}
        for path in files:
            rel = path.relative_to(directory).as_posix()
            self.s3.upload_file(str(path), bucket, prefix + rel)
            sizes[rel] = path.stat().st_size
            total += sizes[rel]
            on_file(prefix + rel)
        for start in range(0, len(stale), 1000):
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]]})
        manifest = {"scene": name, "files": sizes, "views": views, "bytes": total}
        self.s3.put_object(
            Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode(), ContentType="application/json"
        )
        return PushResult(name, f"s3://{bucket}/{prefix}", len(files), total, views)

    def list(self) -> list[dict[str, Any]]:
        """Every scene folder in the bucket; `complete` is False for one whose push never finished."""
        names: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=SCENES_PREFIX, Delimiter="/"
        ):
            names += [p["Prefix"][len(SCENES_PREFIX) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return [
            {"name": n, "uri": f"s3://{self.bucket}/{SCENES_PREFIX}{n}/", "complete": self.exists(n)}
            for n in sorted(names)
        ]

    def exists(self, name: str) -> bool:
        """Whether a whole pushed scene of that name is in the data bucket (its manifest, written last)."""
        resp = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{SCENES_PREFIX}{name}/{SCENE_MANIFEST}", MaxKeys=1)
        return bool(resp.get("KeyCount") or resp.get("Contents"))

    def check_exists(self, scene: str, skip_hint: str = "") -> None:
        """Refuse a job whose pushed scene is missing: it would only fail a second after it is queued.
        s3:// URIs and host paths are the executor's to read, and are not checked here."""
        if scene.startswith(("s3://", "/")) or self.exists(scene):
            return
        if self._keys(self.bucket, f"{SCENES_PREFIX}{scene}/"):
            raise NotFoundError(
                f"scene {scene!r} is incomplete in the data bucket (its push did not finish); "
                f"push it again: skydeck data push DIR --name {scene}{skip_hint}"
            )
        raise NotFoundError(
            f"scene {scene!r} is not in the data bucket; push it first: skydeck data push DIR --name {scene} "
            f"(or make one: skydeck data make-scene NAME --out DIR){skip_hint}"
        )

    def results(self, job_id: str) -> builtins.list[dict[str, Any]]:
        prefix = f"{RESULTS_PREFIX}{job_id}/"
        return [
            {"key": obj["Key"], "name": obj["Key"][len(prefix) :], "size": obj["Size"]}
            for obj in self._objects(self.bucket, prefix)
        ]

    def fetch(
        self, job_id: str, out: Path, on_file: Callable[[str], None] = lambda _: None, overwrite: bool = True
    ) -> builtins.list[Path]:
        objects = self.results(job_id)
        if not objects:
            raise NotFoundError(f"job {job_id} has no results in s3://{self.bucket}/{RESULTS_PREFIX}{job_id}/ (yet)")
        prefix = f"{RESULTS_PREFIX}{job_id}/"
        try:  # every key placed before anything is written: one that would leave --out refuses them all
            targets = [(obj, local_path(out, obj["key"], prefix)) for obj in objects if not obj["key"].endswith("/")]
        except UnsafeKey as exc:
            raise SkydeckError(f"job {job_id}'s results: {exc}; nothing was written to {out}") from None
        there = [t for _, t in targets if t.exists()]
        if there and not overwrite:
            shown = ", ".join(str(t.relative_to(out.resolve())) for t in there[:3]) + (" ..." if len(there) > 3 else "")
            raise ConfigError(
                f"--out {out} already holds {len(there)} of this job's files ({shown}); "
                "pass --overwrite to replace them, or choose another folder"
            )
        written = []
        for obj, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(self.bucket, obj["key"], str(target))
            written.append(target)
            on_file(obj["name"])
        return written

    def read_result(self, job_id: str, name: str, tail: int | None = None) -> bytes:
        """A result file, or with `tail` only its last `tail` bytes (a log followed every second)."""
        extra = {"Range": f"bytes=-{tail}"} if tail else {}
        try:
            key = f"{RESULTS_PREFIX}{job_id}/{name}"
            return self.s3.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            raise NotFoundError(f"job {job_id} has no {name}") from None
        except self.s3.exceptions.ClientError as exc:
            if tail and exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # an empty file has no last bytes
            raise

    def adopt(self, name: str) -> bool:
        """Give a scene pushed before manifests were written (an earlier release) its manifest, when its
        files are whole: every split's transforms file reads, and every frame it names is there. A scene
        whose files are not whole is left as it is: its push did not finish. True when one was written."""
        bucket, prefix = self.bucket, f"{SCENES_PREFIX}{name}/"
        sizes = {obj["Key"][len(prefix) :]: int(obj["Size"]) for obj in self._objects(bucket, prefix)}
        if not sizes or SCENE_MANIFEST in sizes:
            return False
        views: dict[str, int] = {}
        for split in ("train", "val", "test"):
            if f"transforms_{split}.json" not in sizes:
                continue
            try:
                body = self.s3.get_object(Bucket=bucket, Key=f"{prefix}transforms_{split}.json")["Body"].read()
                doc = json.loads(body)
                frames = [f["file_path"] for f in doc["frames"]]
            except (ValueError, KeyError, TypeError):
                return False
            paths = [p.removeprefix("./") for p in frames if isinstance(p, str)]
            if len(paths) != len(frames) or not all((p if p.endswith(".png") else p + ".png") in sizes for p in paths):
                return False
            views[split] = len(frames)
        if "train" not in views or not ({"test", "val"} & views.keys()):
            return False
        manifest = {"scene": name, "files": sizes, "views": views, "bytes": sum(sizes.values()), "adopted": True}
        body = json.dumps(manifest).encode()
        self.s3.put_object(Bucket=bucket, Key=prefix + SCENE_MANIFEST, Body=body, ContentType="application/json")
        return True

    def _keys(self, bucket: str, prefix: str) -> builtins.list[str]:
        return [obj["Key"] for obj in self._objects(bucket, prefix)]

    def _objects(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])


def _refuse_links_out_of(directory: Path) -> None:
    """A scene folder is uploaded as it is, so a symlink in it that points outside it would upload
    whatever it points at (a credentials file, say) for anyone who reads the bucket: refused, named."""
    root = directory.resolve()
    for path in sorted(directory.rglob("*")):
        if not path.is_symlink():
            continue
        target = path.resolve()
        if target != root and root not in target.parents:
            raise ConfigError(
                f"scene refused: {path} is a symlink to {target}, outside the scene folder; "
                "copy the file in (or remove the link) and push again"
            )
