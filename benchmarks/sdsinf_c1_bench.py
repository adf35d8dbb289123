"""The published c1 run (8 workers, Queue, 1024 neurons x 120 layers, 10,000 inputs in one batch)
repeated on a throwaway local cloud, beside the published master file, once per wire.

    .venv/bin/python benchmarks/sdsinf_c1_bench.py [--inputs 10000] [--wires original,npz]
        [--published master_metrics_c1_1024n_8w_10000bs_queue.csv]

The data is generated (MNIST's RadiX-Net files are not reachable here). Its input density is set
so that, as in the published run, about 3.4% of the inputs live through all 120 layers (the
published layer inputs settle at 345,088 nonzeros: 337 inputs x 1,024 neurons); the table prints
the nonzeros and rows sent beside the published ones, since every size follows from them.
Without --published, the anchor is the published file's own figures, written below.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # skydeck; this folder is on the path already

# SDS-Inf-Code resources/master_metrics_c1_1024n_8w_10000bs_queue.csv, and the sums over its
# master_layerstats_c1_1024n_8w_10000bs_queue.csv (NNZ_SENT, ROWS_SENT, CHUNKS_SENT)
PUBLISHED = {
    "METRIC_PUBLISH_CALLS": 1102, "METRIC_NUM_MESSAGES_SENT": 6774, "METRIC_SIZE_MESSAGES_SENT": 104131260,
    "METRIC_RECEIVE_POLL_CALLS": 4318, "METRIC_NUM_MESSAGES_RECEIVED": 6774,
    "METRIC_SIZE_MESSAGES_RECEIVED": 104131260, "METRIC_ELAPSED_TIME_COMPRESSION": 15.093239,
    "METRIC_MAX_MESSAGE_SIZE": 157769, "METRIC_MAX_BATCH_MSG_SIZE": 259362,
    "CHUNKS_SENT": 6774, "NNZ_SENT": 157175914, "ROWS_SENT": 430073,
}  # fmt: skip
COLUMNS = [
    "METRIC_PUBLISH_CALLS", "METRIC_NUM_MESSAGES_SENT", "METRIC_SIZE_MESSAGES_SENT", "METRIC_NUM_MESSAGES_RECEIVED",
    "METRIC_SIZE_MESSAGES_RECEIVED", "CHUNKS_SENT", "METRIC_MAX_MESSAGE_SIZE", "METRIC_MAX_BATCH_MSG_SIZE",
    "METRIC_ELAPSED_TIME_COMPRESSION", "NNZ_SENT", "ROWS_SENT",
]  # fmt: skip
DENSITY = (0.2, 0.3035)  # about 3.4% of 10,000 generated inputs live through 120 layers, as MNIST's


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=120)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--wires", default="original,npz")
    parser.add_argument("--published", type=Path, help="the published master_metrics_*.csv (default: its figures)")
    args = parser.parse_args()
    published = dict(PUBLISHED)
    if args.published:
        with args.published.open() as f:
            published.update({k: float(v) for k, v in next(csv.DictReader(f)).items() if k.startswith("METRIC_")})
    wires = args.wires.split(",")
    results = {w: run(w, args.inputs, args.layers, args.workers) for w in wires}
    print(f"\nc1: {args.workers} workers, Queue, 1024 x {args.layers}, {args.inputs} inputs, one batch")
    header = f"{'column':<34}{'published':>15}" + "".join(f"{w:>15}{'ratio':>7}" for w in wires)
    print(header)
    for column in COLUMNS:
        line = f"{column:<34}{_fmt(published[column]):>15}"
        for w in wires:
            ours = results[w][column]
            line += f"{_fmt(ours):>15}{ours / published[column]:>7.2f}"
        print(line)
    for w in wires:
        print(f"wire {w}: wall {results[w]['wall_s']:.0f} s, truth {results[w]['truth']}")
    return 0


def _fmt(x: float) -> str:
    return f"{x:,.2f}" if x < 1000 and x != int(x) else f"{int(x):,}"


def run(wire: str, inputs: int, layers: int, workers: int) -> dict[str, float]:
    from sdsinf_cloud import uploaded_cloud

    from backend.sdsinf.plans import RunPlan

    with uploaded_cloud("c1", layers, inputs, seed=0, density=DENSITY) as runs:
        t = time.perf_counter()
        plan = RunPlan(
            f"c1_1024n_{workers}w_{inputs}bs_queue", "c1", "queue", workers, wire=wire,
            poll_timeout_s=600,  # 8 workers share 2 cores here: a layer can take minutes
        )  # fmt: skip
        started = runs.start(plan)
        summary = runs.follow(started.run_id, timeout_s=7200, idle_timeout_s=1800)
        wall = time.perf_counter() - t
        shown = runs.show(started.run_id)["metrics"]
        metrics = {k: float(v) for k, v in shown.items() if k.startswith("METRIC")}
        bucket = runs.out["MetricsBucket"]
        for column in ("CHUNKS_SENT", "NNZ_SENT", "ROWS_SENT"):
            metrics[column] = 0.0
        for k in range(workers):
            body = runs._get(bucket, f"{started.prefix}/layerstats-worker-{k:04d}.csv").decode()
            for row in csv.DictReader(io.StringIO(body)):
                for column in ("CHUNKS_SENT", "NNZ_SENT", "ROWS_SENT"):
                    metrics[column] += float(row[column])
        print(f"wire {wire}: {summary.state} in {wall:.0f} s", flush=True)
        return {**metrics, "wall_s": wall, "truth": summary.matches_truth}


if __name__ == "__main__":
    sys.exit(main())
