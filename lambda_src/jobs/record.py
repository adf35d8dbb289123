"""The jobs table's item as a dataclass, at every end that touches it.

The API handler and the backend write it (a submit), the executor moves it on (claim, heartbeat,
finish, release), and all of them read it as attributes. Its item form (`to_item`) is what the table
holds, what `GET /jobs/{id}` answers and what `skydeck jobs show --json` prints: a key that was never
written is absent (never null), and a key this version does not know is kept as read, so a record
written by a newer executor passes through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Self

from lambda_src.jobs.schema import TERMINAL_STATES, JobSpec, parse_job

SPEC_KEYS = ("name", "scene", "engine", "config", "resources", "gpu", "preset", "checkpoint")


class _Document:
    """A dataclass whose dict form is a table document: fields left None are absent from it, and keys
    this version does not know ride along in `extra`, written back as they were read."""

    extra: dict[str, Any]

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Self:
        names = _names(cls)
        # every subclass is a dataclass with an `extra` field; the base declares no constructor of its own
        known: dict[str, Any] = {k: doc[k] for k in names & doc.keys()}
        known["extra"] = {k: v for k, v in doc.items() if k not in names}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}  # type: ignore[arg-type]  # every subclass is a dataclass; the base is not
        doc = {k: v for k, v in doc.items() if v is not None}
        doc.update(self.extra)
        return doc


def _names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls) if f.name != "extra")


@dataclass(frozen=True)
class JobProgress(_Document):
    """What a running job last reported: the torch engine's step (train.Progress), svox2's epoch and
    batch as its tqdm line gives them, and the stage while it evaluates or writes results."""

    iteration: int | None = None
    n_iters: int | None = None
    loss: float | None = None
    psnr_train: float | None = None
    psnr: float | None = None  # held-out PSNR, where the engine has evaluated one
    rays_per_s: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    reso: list[int] | None = None
    voxels: int | None = None
    stage: str | None = None
    train_views: int | None = None
    test_views: int | None = None
    epoch: int | None = None  # svox2's
    batch: int | None = None
    batches: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult(_Document):
    """What a job that ended left: its scores (render_imgs.py's PSNR, SSIM, LPIPS over the test views),
    where its files are, how long each phase took, and notes for the operator."""

    engine: str | None = None
    psnr: float | None = None
    ssim: float | None = None
    lpips: float | None = None
    lpips_unavailable: str | None = None  # why there is no LPIPS (a package, the weights)
    iterations: int | None = None
    train_s: float | None = None
    rays_per_s: float | None = None
    elapsed_s: float | None = None
    phases_s: dict[str, float] | None = None  # queued, load, train, evaluate, render, upload
    notes: list[str] | None = None
    artifacts: str | None = None  # s3://BUCKET/results/JOB_ID/
    test_views: int | None = None
    checkpoint: str | None = None  # a validation job's
    reso: list[int] | None = None
    voxels: int | None = None
    stopped_early: bool | None = None
    device: str | None = None
    history: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    state: str  # QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED (schema.STATES)
    kind: str | None = None  # always "job": the by_created index's partition key
    created_at: float | None = None
    updated_at: float | None = None
    attempts: int | None = None  # claims so far; a job handed back and claimed again counts each
    # the job as it was submitted: JobSpec's fields (`spec()` reads them back)
    name: str | None = None
    scene: str | None = None
    engine: str | None = None
    config: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    gpu: str | None = None
    preset: str | None = None
    checkpoint: str | None = None
    sent: dict[str, Any] | None = None  # the original's command and config, as a client sent them
    # the run, as the executor records it
    worker: str | None = None
    started_at: float | None = None
    heartbeat_at: float | None = None
    finished_at: float | None = None
    progress: JobProgress | None = None
    result: JobResult | None = None
    error: str | None = None
    note: str | None = None  # why it was handed back or re-queued
    cancel_requested: bool | None = None
    replayed: bool | None = None  # never stored: a submit answered with the job the same key made before
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobRecord:
        """A record from its item form (plain values, as `from_dynamo_item` or JSON gives them)."""
        missing = [k for k in ("job_id", "state") if not isinstance(item.get(k), str)]
        if missing:
            raise ValueError(f"a jobs-table item needs {' and '.join(missing)} as text; it has {sorted(item)}")
        known = {k: item[k] for k in _FIELDS & item.keys()}
        for key, typed in (("progress", JobProgress), ("result", JobResult)):
            if isinstance(known.get(key), Mapping):
                known[key] = typed.from_dict(known[key])
        return cls(**known, extra={k: v for k, v in item.items() if k not in _FIELDS})

    def to_item(self) -> dict[str, Any]:
        """The item form: every field that is set, then the keys kept as read."""
        doc = {name: getattr(self, name) for name in _ORDER if getattr(self, name) is not None}
        for key in ("progress", "result"):
            if isinstance(doc.get(key), _Document):
                doc[key] = doc[key].to_dict()
        doc.update(self.extra)
        return doc

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES

    def spec(self) -> JobSpec:
        """The job as submitted, checked again (JobValidationError if the stored one is not valid)."""
        doc = self.to_item()
        return parse_job({k: doc[k] for k in SPEC_KEYS if k in doc})

    def as_replayed(self) -> JobRecord:
        return replace(self, replayed=True)


_ORDER = tuple(f.name for f in fields(JobRecord) if f.name != "extra")
_FIELDS = frozenset(_ORDER)


@dataclass(frozen=True)
class JobRecordPage:
    """A page of records, newest first; `next_token` pages on (None: the last page)."""

    items: list[JobRecord]
    next_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [r.to_item() for r in self.items], "next_token": self.next_token}
