"""The files the original writes where its payload's `metrics_loc` points, for a run started from one.

The original's worker 0 writes one row, with no header, to `SUBFOLDER/FILENAME`: the experiment id
(`expt_id`), then the run columns (CONFIG, BFR, ...) and the metrics in their order. Each worker K
writes its layer rows to `SUBFOLDER/EXPT_ID/WK_LS.csv`, each row the experiment id, then CONFIG and
the layer columns. skydeck writes the same (beside its own run files under `runs/RUN_ID/`), in the
stack's metrics bucket: at `metrics_loc.bucket` when that is the metrics bucket, and otherwise at
the same keys in the metrics bucket, which the answer says (the workers may write to no other).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any

from lambda_src.sdsinf.metrics import RUN_COLUMNS
from lambda_src.sdsinf.payload import PayloadError

Put = Callable[[str, str, str], None]


@dataclass(frozen=True)
class MetricsLoc:
    bucket: str  # where the files go (the stack's metrics bucket)
    subfolder: str
    filename: str
    expt_id: str
    asked_bucket: str  # what the payload named
    # the metrics row's run columns as the original writes them, from its payload (BFR ... NUM_BATCHES)
    run_columns: dict[str, str] = dataclass_field(default_factory=dict)

    @property
    def master_key(self) -> str:
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename

    def layerstats_key(self, worker: int) -> str:
        folder = f"{self.subfolder}/{self.expt_id}" if self.subfolder else self.expt_id
        return f"{folder}/W{worker}_LS.csv"

    @property
    def note(self) -> str:
        """What differs from where the payload pointed ("" when nothing does)."""
        if self.asked_bucket == self.bucket:
            return ""
        return (
            f"metrics_loc.bucket {self.asked_bucket!r} is not this stack's metrics bucket: the original's files "
            f"are at the same keys in s3://{self.bucket}/"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MetricsLoc:
        columns = doc.get("run_columns") or {}
        return cls(
            **{k: str(doc[k]) for k in ("bucket", "subfolder", "filename", "expt_id", "asked_bucket")},
            run_columns={str(k): str(v) for k, v in columns.items()} if isinstance(columns, dict) else {},
        )


def metrics_loc(doc: Mapping[str, Any], metrics_bucket: str) -> MetricsLoc:
    """The payload's data_params.metrics_loc, checked: its keys stay keys (no '..', no empty part)."""
    loc = doc["data_params"]["metrics_loc"]
    for field in ("bucket", "subfolder", "filename", "expt_id"):
        if field not in loc:
            raise PayloadError(f"payload: data_params.metrics_loc.{field} is missing (the original payloads have it)")
    subfolder = str(loc["subfolder"]).strip("/")
    filename, expt_id = str(loc["filename"]), str(loc["expt_id"])
    for field, value in (("subfolder", subfolder), ("filename", filename), ("expt_id", expt_id)):
        if field == "subfolder" and not value:
            continue  # the original's files at the bucket's top
        parts = value.split("/")
        nested = field != "subfolder" and len(parts) > 1
        if nested or any(p in ("", ".", "..") for p in parts) or "\x00" in value or "\\" in value:
            raise PayloadError(
                f"payload: data_params.metrics_loc.{field} {value!r} is not a plain S3 key "
                "(no '..', '.' or empty part, no NUL or backslash)"
            )
    return MetricsLoc(metrics_bucket, subfolder, filename, expt_id, str(loc["bucket"]))


def _rows(rows: Iterable[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)  # csv.writer's default, as the original's
    return buf.getvalue()


# The original keeps its metrics in float32 arrays and writes them as such (`str(np.float32)`: "22.0",
# "64.258354"); its LayerStats writes its INTEGER_METRICS as ints instead (Queue and Object alike).
INTEGER_LAYER_COLUMNS = frozenset({
    "WORKER_ID", "LAYER", "PUBLISH_NUM", "MSG_NUM", "LS_NUM_TARGETS", "NNZ", "CHUNKS_SENT", "NNZ_SENT", "ROWS_SENT",
    "FILES_WRITTEN", "FILES_READ", "NULL_FILES_WRITTEN", "NULL_FILES_OBSERVED", "NUM_FOLDER_SCANS", "NUM_TARGETS",
})  # fmt: skip


def as_float32(value: Any) -> str:
    """A metric as the original's float32 array writes it."""
    import numpy as np

    return str(np.float32(value))


def write_master(put: Put, loc: MetricsLoc, columns: list[str], totals: Mapping[str, Any]) -> None:
    """The original's one row: its run columns are its payload's values (numData, numBatches as
    written there, not as run), its metrics what the run measured, written as its float32 array
    writes them."""
    said = {**totals, **loc.run_columns}
    row = [said.get(c, 0) if c in RUN_COLUMNS else as_float32(said.get(c, 0)) for c in columns]
    put(loc.bucket, loc.master_key, _rows([[loc.expt_id, *row]]))


def write_layerstats(
    put: Put, loc: MetricsLoc, worker: int, columns: list[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    def written(column: str, value: Any) -> Any:
        if column == "CONFIG":
            return value
        return int(value) if column in INTEGER_LAYER_COLUMNS else as_float32(value)

    lines = ([loc.expt_id, *(written(c, r.get(c, 0)) for c in columns)] for r in rows)
    put(loc.bucket, loc.layerstats_key(worker), _rows(lines))


def coordinator_answer(run_id: str, loc: MetricsLoc | None, error: str | None = None) -> dict[str, Any]:
    """The original coordinator's answer ({"statusCode": 200, "body": "{\\"message\\": ...}"}), with the run id
    and where its files go in the body; a payload that cannot run is a 400 whose message names the field."""
    import json

    if error is not None:
        return {"statusCode": 400, "body": json.dumps({"message": error})}
    body: dict[str, Any] = {"message": "Coordinator returning!", "run_id": run_id}
    if loc is not None:
        body["metrics_loc"] = f"s3://{loc.bucket}/{loc.master_key}"
        if loc.note:
            body["note"] = loc.note
    return {"statusCode": 200, "body": json.dumps(body)}
