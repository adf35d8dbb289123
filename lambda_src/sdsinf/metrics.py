"""The run files, with the original's column names so results compare with the published runs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

# What every run's row starts with: the run as its payload describes it.
RUN_COLUMNS = [
    "CONFIG",
    "BFR",
    "NLEVELS",
    "TOTAL_NWORKERS",
    "NUM_NEURONS",
    "NUM_LAYERS",
    "NUM_DATA",
    "BATCH_SIZE",
    "NUM_BATCHES",
]
METRICS_COLUMNS = RUN_COLUMNS + [
    "METRIC_PUBLISH_CALLS",
    "METRIC_NUM_MESSAGES_SENT",
    "METRIC_SIZE_MESSAGES_SENT",
    "METRIC_RECEIVE_POLL_CALLS",
    "METRIC_NUM_MESSAGES_RECEIVED",
    "METRIC_SIZE_MESSAGES_RECEIVED",
    "METRIC_ELAPSED_TIME_BATCH",
    "METRIC_ELAPSED_TIME_COMMUNICATION",
    "METRIC_ELAPSED_TIME_COMPUTATION",
    "METRIC_ELAPSED_TIME_COMPRESSION",
    "METRIC_LAMBDA_RUNTIME",
    "METRIC_DYNAMODB_ITEMS_WRITTEN",
    "METRIC_DYNAMODB_TOTAL_ITEMS_READ",
    "METRIC_DYNAMODB_UNIQUE_ITEMS_READ",
    "METRIC_MAX_ROW_NNZ",
    "METRIC_MAX_MESSAGE_SIZE",
    "METRIC_MAX_BATCH_MSG_SIZE",
]
LAYERSTATS_COLUMNS = [
    "CONFIG",
    "WORKER_ID",
    "LAYER",
    "PUBLISH_NUM",
    "PUBLISH_TOTAL_SIZE",
    "PUBLISH_MAX_SIZE",
    "PUBLISH_MIN_SIZE",
    "PUBLISH_AVG_SIZE",
    "MSG_NUM",
    "MSG_TOTAL_SIZE",
    "MSG_MAX_SIZE",
    "MSG_MIN_SIZE",
    "MSG_AVG_SIZE",
    "LS_NUM_TARGETS",
    "NNZ",
    "CHUNKS_SENT",
    "CHUNKS_PER_TARGET",
    "CHUNK_TOTAL_SIZE",
    "CHUNK_MIN_SIZE",
    "CHUNK_MAX_SIZE",
    "CHUNK_AVG_SIZE",
    "NNZ_SENT",
    "NNZ_PER_TARGET",
    "ROWS_SENT",
    "ROWS_PER_TARGET",
    "LAYER_DURATION",
]


# The Object and Serial variants' files (the original's object and serial workers: METRIC_S3_* and
# their LayerStats), with the same leading run columns as the Queue row.
S3_METRICS_COLUMNS = RUN_COLUMNS + [
    "METRIC_S3_NUM_WRITES",
    "METRIC_S3_NUM_READS",
    "METRIC_S3_WRITE_SIZE",
    "METRIC_S3_READ_SIZE",
    "METRIC_S3_FOLDER_SCANS",
    "METRIC_ELAPSED_TIME_TOTAL",
    "METRIC_ELAPSED_TIME_COMMUNICATION",
    "METRIC_ELAPSED_TIME_COMPRESSION",
    "METRIC_ELAPSED_TIME_COMPUTATION",
    "METRIC_LAMBDA_RUNTIME",
    "METRIC_MAX_FILE_SIZE",
    "METRIC_MAX_ROW_NNZ",
]
S3_LAYERSTATS_COLUMNS = [
    "CONFIG",
    "WORKER_ID",
    "LAYER",
    "FILES_WRITTEN",
    "FILES_WRITTEN_TOTAL_SIZE",
    "FILES_WRITTEN_MAX_SIZE",
    "FILES_WRITTEN_MIN_SIZE",
    "FILES_WRITTEN_AVG_SIZE",
    "FILES_READ",
    "FILES_READ_TOTAL_SIZE",
    "FILES_READ_MAX_SIZE",
    "FILES_READ_MIN_SIZE",
    "FILES_READ_AVG_SIZE",
    "NULL_FILES_WRITTEN",
    "NULL_FILES_OBSERVED",
    "NUM_FOLDER_SCANS",
    "NUM_TARGETS",
    "NNZ",
    "NNZ_SENT",
    "NNZ_PER_TARGET",
    "ROWS_SENT",
    "ROWS_PER_TARGET",
    "LAYER_DURATION",
]


def worker_file_columns(layer_columns: list[str]) -> list[str]:
    """The columns of the original's own per-worker file (`EXPT_ID/WK_LS.csv` at metrics_loc): its
    LayerStats with LAYER_START_TIME after LAYER and LAYER_END_TIME before LAYER_DURATION (its timer's
    readings, `timeit.default_timer()`). The published master_layerstats files leave both out."""
    at = layer_columns.index("LAYER") + 1
    end = layer_columns.index("LAYER_DURATION")
    return [*layer_columns[:at], "LAYER_START_TIME", *layer_columns[at:end], "LAYER_END_TIME", *layer_columns[end:]]


def columns_for(variant: str) -> tuple[list[str], list[str]]:
    """(metrics columns, layerstats columns) the original writes for this variant."""
    if variant in ("object", "serial"):
        return S3_METRICS_COLUMNS, S3_LAYERSTATS_COLUMNS
    return METRICS_COLUMNS, LAYERSTATS_COLUMNS


def to_csv(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, 0) for c in columns})
    return buf.getvalue()


def from_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
