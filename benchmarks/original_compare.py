"""The files two Queue runs wrote at their payloads' metrics_loc, compared column by column.

Each run writes the master row (`SUBFOLDER/FILENAME`: expt_id, the run's columns, the 17 metrics)
and a layer file per worker (`SUBFOLDER/EXPT_ID/WK_LS.csv`). Columns are judged by kind:

- counts (messages, publish calls, chunks, NNZ, rows, DynamoDB writes): within 2%;
- bytes (sizes, totals, maxima, minima): within 5%;
- the run's own columns (config, tree, model, batches): equal;
- times, and the counts that follow them (SQS polls, S3 folder scans, DynamoDB reads: a worker asks
  again until what it waits for is there), depend on how the two runs were scheduled: printed side
  by side.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from lambda_src.sdsinf.metrics import columns_for, worker_file_columns

MASTER_COUNTS = {
    "METRIC_PUBLISH_CALLS", "METRIC_NUM_MESSAGES_SENT", "METRIC_NUM_MESSAGES_RECEIVED",
    "METRIC_DYNAMODB_ITEMS_WRITTEN", "METRIC_MAX_ROW_NNZ",
    "METRIC_S3_NUM_WRITES", "METRIC_S3_NUM_READS",
}  # fmt: skip
MASTER_BYTES = {
    "METRIC_SIZE_MESSAGES_SENT", "METRIC_SIZE_MESSAGES_RECEIVED", "METRIC_MAX_MESSAGE_SIZE",
    "METRIC_MAX_BATCH_MSG_SIZE", "METRIC_S3_WRITE_SIZE", "METRIC_S3_READ_SIZE", "METRIC_MAX_FILE_SIZE",
}  # fmt: skip
MASTER_SHOWN = {
    "METRIC_RECEIVE_POLL_CALLS", "METRIC_DYNAMODB_TOTAL_ITEMS_READ", "METRIC_DYNAMODB_UNIQUE_ITEMS_READ",
    "METRIC_ELAPSED_TIME_BATCH", "METRIC_ELAPSED_TIME_TOTAL", "METRIC_ELAPSED_TIME_COMMUNICATION",
    "METRIC_ELAPSED_TIME_COMPUTATION", "METRIC_ELAPSED_TIME_COMPRESSION", "METRIC_LAMBDA_RUNTIME",
    # a listing every 0.1 s until a layer's files are all there: as many as the waits take
    "METRIC_S3_FOLDER_SCANS",
}  # fmt: skip
LAYER_COUNTS = {
    "PUBLISH_NUM", "MSG_NUM", "LS_NUM_TARGETS", "NNZ", "CHUNKS_SENT", "CHUNKS_PER_TARGET", "NNZ_SENT",
    "NNZ_PER_TARGET", "ROWS_SENT", "ROWS_PER_TARGET",
    "FILES_WRITTEN", "FILES_READ", "NULL_FILES_WRITTEN", "NULL_FILES_OBSERVED", "NUM_TARGETS",
}  # fmt: skip
LAYER_SHOWN = {"LAYER_DURATION", "NUM_FOLDER_SCANS"}


def master_columns(variant: str) -> list[str]:
    return ["EXPT_ID", *columns_for(variant)[0]]


def layer_file_columns(variant: str) -> list[str]:
    return ["EXPT_ID", *worker_file_columns(columns_for(variant)[1])]
LAYER_IDENTITY = {"EXPT_ID", "CONFIG", "WORKER_ID", "LAYER"}
# how a layer column sums over workers and layers: maxima and minima over cells, the rest added
_LAYER_FOLD = {"MAX": max, "MIN": min}


@dataclass(frozen=True)
class Line:
    column: str
    original: float | str
    skydeck: float | str
    tolerance: float | None  # None: shown only; 0: equal

    @property
    def within(self) -> bool:
        if self.tolerance is None:
            return True
        if isinstance(self.original, str) or isinstance(self.skydeck, str):
            return self.original == self.skydeck
        a, b = float(self.original), float(self.skydeck)
        if a == 0:
            return b == 0
        return abs(b / a - 1.0) <= self.tolerance


def _rows(body: bytes) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(body.decode())) if row]


def master_lines(variant: str, original: bytes, skydeck: bytes) -> list[Line]:
    master = master_columns(variant)
    a, b = _rows(original)[0], _rows(skydeck)[0]
    if len(a) != len(master) or len(b) != len(master):
        raise SystemExit(f"a master row has {len(a)} and {len(b)} fields, not the original's {len(master)}")
    lines = []
    for i, column in enumerate(master):
        if column in MASTER_COUNTS:
            lines.append(Line(column, float(a[i]), float(b[i]), 0.02))
        elif column in MASTER_BYTES:
            lines.append(Line(column, float(a[i]), float(b[i]), 0.05))
        elif column in MASTER_SHOWN:
            lines.append(Line(column, float(a[i]), float(b[i]), None))
        else:
            lines.append(Line(column, a[i], b[i], 0.0))
    return lines


def layer_lines(
    variant: str, original: list[bytes], skydeck: list[bytes], layers: int
) -> tuple[list[Line], dict[str, int], int]:
    """Each layer column folded over every worker and layer (the first `layers` rows of each file: the
    original's file always has 120); per count column, the (worker, layer) rows where the two differ;
    and how many rows there are."""
    columns = layer_file_columns(variant)
    counted = sorted(LAYER_COUNTS & set(columns))
    cells_a = [row for body in original for row in _rows(body)[:layers]]
    cells_b = [row for body in skydeck for row in _rows(body)[:layers]]
    if len(cells_a) != len(cells_b):
        raise SystemExit(f"the original wrote {len(cells_a)} layer rows and skydeck {len(cells_b)}")
    lines: list[Line] = []
    pairs = list(zip(cells_a, cells_b, strict=True))
    differing = {c: sum(float(a[columns.index(c)]) != float(b[columns.index(c)]) for a, b in pairs) for c in counted}
    for i, column in enumerate(columns):
        if column in ("LAYER_START_TIME", "LAYER_END_TIME"):
            continue  # readings of each worker's own timer: their differences are LAYER_DURATION
        if column in LAYER_IDENTITY:
            same = all(ra[i] == rb[i] for ra, rb in zip(cells_a, cells_b, strict=True))
            lines.append(Line(column, "as written", "as written" if same else "differs", 0.0))
            continue
        fold = next((f for key, f in _LAYER_FOLD.items() if f"_{key}_" in column), None)
        values_a, values_b = [float(r[i]) for r in cells_a], [float(r[i]) for r in cells_b]
        a, b = (fold(values_a), fold(values_b)) if fold else (sum(values_a), sum(values_b))
        if column in LAYER_SHOWN:
            tolerance: float | None = None
        else:
            tolerance = 0.02 if column in LAYER_COUNTS else 0.05
        lines.append(Line(column, a, b, tolerance))
    return lines, {c: n for c, n in differing.items() if n}, len(cells_a)


def print_table(title: str, lines: list[Line]) -> list[str]:
    """Prints the lines; the columns outside their tolerance."""
    print(f"\n{title}")
    print(f"{'column':<36}{'original':>18}{'skydeck':>18}{'ratio':>8}  within")
    outside = []
    for line in lines:
        if isinstance(line.original, str) or isinstance(line.skydeck, str):
            verdict = "yes" if line.within else "NO"
            print(f"{line.column:<36}{line.original!s:>18}{line.skydeck!s:>18}{'':>8}  {verdict}")
        else:
            a, b = float(line.original), float(line.skydeck)
            ratio = f"{b / a:.3f}" if a else ("1.000" if b == 0 else "inf")
            if line.tolerance is None:
                verdict = "(shown)"
            else:
                verdict = f"{'yes' if line.within else 'NO'} (±{line.tolerance:.0%})" if line.tolerance else (
                    "yes" if line.within else "NO"
                )
            print(f"{line.column:<36}{a:>18,.3f}{b:>18,.3f}{ratio:>8}  {verdict}")
        if not line.within:
            outside.append(line.column)
    return outside
