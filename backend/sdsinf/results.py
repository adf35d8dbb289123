"""A run's files brought home, and a run set beside a published one.

`fetch` copies what a run wrote (metrics, every worker's layerstats, categories, summary, the request)
and adds the original's `master_*` form of the same run: `master_metrics_CONFIG.csv` (the metrics
row) and `master_layerstats_CONFIG.csv` (every worker's layer rows, worker by worker), the files the
SDS-Inf repository publishes in `resources/`; over a run and its repeats (`--repeat K`) those two
files hold each number's median. `compare` reads such a master file and puts this run's
numbers beside it, column by column, with their ratio.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.errors import ConfigError, NotFoundError, SkydeckError
from lambda_src.keys import UnsafeKey, check_name, local_path
from lambda_src.sdsinf.metrics import METRICS_COLUMNS, S3_METRICS_COLUMNS, from_csv, to_csv


@dataclass(frozen=True)
class ColumnComparison:
    column: str
    ours: str
    theirs: str
    ratio: float | None  # ours / theirs, where both are numbers and theirs is not 0

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "ours": self.ours, "theirs": self.theirs, "ratio": self.ratio}


def fetch(s3: Any, bucket: str, run_id: str, out: Path, overwrite: bool = True) -> list[Path]:
    try:
        check_name("run", run_id)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    prefix = f"runs/{run_id}/"
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
        if "/live/" not in o["Key"] and "/workers/" not in o["Key"]
    ]
    if not any(k.endswith("/summary.json") for k in keys):
        raise NotFoundError(f"no finished run {run_id!r}; list them with: skydeck sdsinf runs")
    try:  # every key placed before anything is written: one that would leave --out refuses them all
        targets = [(key, local_path(out, key, prefix)) for key in sorted(keys) if not key.endswith("/")]
    except UnsafeKey as exc:
        raise SkydeckError(f"run {run_id}: {exc}; nothing was written to {out}") from None
    there = [t for _, t in targets if t.exists()]
    if there and not overwrite:  # as `jobs fetch` does: a second fetch into one folder asks first
        shown = ", ".join(str(t.relative_to(out.resolve())) for t in there[:3]) + (" ..." if len(there) > 3 else "")
        raise ConfigError(
            f"--out {out} already holds {len(there)} of this run's files ({shown}); "
            "pass --overwrite to replace them, or choose another folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    bodies: dict[str, bytes] = {}
    for key, target in targets:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        bodies[key[len(prefix) :]] = body
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        written.append(target)
    if "metrics.csv" in bodies:
        rows = from_csv(bodies["metrics.csv"].decode())
        config = rows[0]["CONFIG"] if rows else run_id
        master = out / f"master_metrics_{config}.csv"
        master.write_bytes(bodies["metrics.csv"])
        layer_rows = [
            row
            for name in sorted(n for n in bodies if n.startswith("layerstats-worker-"))
            for row in from_csv(bodies[name].decode())
        ]
        layers = out / f"master_layerstats_{config}.csv"
        layers.write_text(to_csv(list(layer_rows[0]) if layer_rows else [], layer_rows))
        written += [master, layers]
    return written


def read_master(path: Path) -> dict[str, str]:
    """A published master_metrics file: its row, or the median of each numeric column over its rows.
    `published` (or `c1`) names the original's published c1 run, kept in skydeck (sdsinf/published.py)."""
    from backend.sdsinf.published import C1_QUEUE, NAMES

    if str(path) in NAMES and not path.exists():
        return dict(C1_QUEUE)
    if path.is_dir():
        raise ConfigError(
            f"{path} is a folder: name a master_metrics_*.csv file, or `published` (the original's c1 run)"
        )
    try:
        rows = from_csv(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"{path}: {exc.strerror}; `published` compares with the original's published c1 run"
        ) from None
    if not rows:
        raise ConfigError(f"{path}: no rows")
    known = set(METRICS_COLUMNS) | set(S3_METRICS_COLUMNS)
    if not known & set(rows[0]):
        raise ConfigError(f"{path}: not a metrics file (none of the original's columns, e.g. CONFIG)")
    return rows[0] if len(rows) == 1 else median_row(rows)


def median_row(rows: list[dict[str, str]]) -> dict[str, str]:
    """Each column's median over the rows where every row holds a number there, else the first row's."""
    merged = dict(rows[0])
    for column in rows[0]:
        numbers = [_number(r.get(column, "")) for r in rows]
        if all(n is not None for n in numbers):
            merged[column] = f"{statistics.median(n for n in numbers if n is not None):g}"
    return merged


def repeats_of(summaries: list[Any], run_id: str, count: int) -> list[str]:
    """RUN and the count-1 finished runs before it of the same config, variant, worker count and
    number of inputs, newest first: a run and its repeats (`skydeck sdsinf run ... --repeat K` makes such a set)."""
    by_id = {s.run_id: s for s in summaries}
    if run_id not in by_id:
        raise NotFoundError(f"no finished run {run_id!r}; list them with: skydeck sdsinf runs")
    this = by_id[run_id]
    same = [
        s.run_id
        for s in sorted(summaries, key=lambda s: s.run_id, reverse=True)
        if s.run_id <= run_id
        and s.state == "SUCCEEDED"
        and (s.config, s.variant, s.workers, s.inputs) == (this.config, this.variant, this.workers, this.inputs)
    ]
    if this.state != "SUCCEEDED" or len(same) < count:
        raise ConfigError(
            f"--repeat {count}: {len(same)} finished run(s) of {this.config} ({this.variant}, {this.workers} "
            f"worker(s), {this.inputs} inputs) up to {run_id}; make more with: skydeck sdsinf run {this.config} "
            f"--repeat {count}"
        )
    return same[:count]


def fetch_repeats(s3: Any, bucket: str, run_ids: list[str], out: Path, overwrite: bool = True) -> list[Path]:
    """Each run's files in OUT/RUN_ID/, and OUT/master_metrics_CONFIG.csv and master_layerstats_CONFIG.csv
    holding the median over the runs of every number (per worker and layer for the layer stats), in the
    original's master form."""
    written: list[Path] = []
    metrics: list[dict[str, str]] = []
    layers: dict[tuple[str, str], list[dict[str, str]]] = {}
    for run_id in run_ids:
        written += fetch(s3, bucket, run_id, out / run_id, overwrite)
        metrics += from_csv((out / run_id / "metrics.csv").read_text())
        for path in sorted((out / run_id).glob("layerstats-worker-*.csv")):
            for row in from_csv(path.read_text()):
                layers.setdefault((row["WORKER_ID"], row["LAYER"]), []).append(row)
    config = metrics[0]["CONFIG"]
    master = out / f"master_metrics_{config}.csv"
    master.write_text(to_csv(list(metrics[0]), [median_row(metrics)]))
    layer_rows = [median_row(rows) for _, rows in sorted(layers.items(), key=lambda kv: tuple(map(int, kv[0])))]
    stats = out / f"master_layerstats_{config}.csv"
    stats.write_text(to_csv(list(layer_rows[0]) if layer_rows else [], layer_rows))
    return [*written, master, stats]


def compare(ours: dict[str, str], theirs: dict[str, str]) -> list[ColumnComparison]:
    """Every column of this run's row (the Queue schema, or the S3 one of Object and Serial), in order."""
    found = []
    for column in ours:
        a, b = str(ours.get(column, "")), str(theirs.get(column, ""))
        x, y = _number(a), _number(b)
        ratio = x / y if x is not None and y not in (None, 0.0) else None
        found.append(ColumnComparison(column, a, b, ratio))
    return found


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def compare_run(runs: Any, run_id: str, published: Path) -> tuple[str, list[ColumnComparison]]:
    """(the run's full id, its columns beside the published file's); what `sdsinf compare` and the
    console's SDS-Inf screen show."""
    theirs = read_master(published)
    shown = runs.show(runs.resolve(run_id))
    if not shown.get("metrics"):
        raise ConfigError(f"run {shown['run_id']} has no metrics to compare (it {shown.get('state', 'failed')})")
    return shown["run_id"], compare(shown["metrics"], theirs)
