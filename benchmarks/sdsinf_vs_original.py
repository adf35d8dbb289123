"""SDS-Inf, the original's own code beside skydeck's, on one network and one set of inputs, column by
column.

    .venv/bin/python benchmarks/sdsinf_vs_original.py [--original third_party/SDS-Inf-Code]
        [--variant queue|object|serial] [--data DIR] [--inputs 500] [--workers 8] [--bfr B --levels L]
        [--in-process [--wire original|compact]]

The original is a checkout of SDS-Inf/SDS-Inf-Code at the pinned commit (`make original` puts one in
the git-ignored `third_party/`); nothing is fetched at run time. `--data` takes any Graph Challenge
directory (`neuron{N}/n{N}-l{k}.tsv`, `sparse-images-{N}.tsv`, the categories file); without it one
is generated.

By default both run deployed, on one throwaway local cloud:
- **the original**: its coordinator and worker (Serial: its worker) deployed as Lambda functions as
  its README deploys them (benchmarks/original_lambda.py: roles, its own resource scripts, the
  worker's ARN, its buckets), the network and inputs uploaded in its files (`nnp.K`, `train.K`,
  `conn.L`: benchmarks/original_files.py), and a payload in the published payloads' shape invoked;
- **skydeck**: the sdsinf stack, the same data uploaded as a dataset, and the same payload (its
  buckets skydeck's) sent to skydeck's coordinator (Serial: its function).
Both write the original's files at the payload's metrics_loc; the master row and every W{K}_LS.csv
are compared column by column (benchmarks/original_compare.py: counts within 2%, bytes within 5%,
times and the counts that follow them printed), and the categories each found against the truth
(the original's from its workers' printed maxima, skydeck's from its categories.tsv). It exits 1
naming every column outside tolerance.

`--in-process` instead imports the original Queue worker module and runs its own functions for every
worker and layer in this process (`multiply_post_process`, `send_row_extractor`,
`bytes_string_to_csr_new`; its handler's inline parts restated), beside a skydeck run with `--wire`:
quicker, with no SNS, SQS, DynamoDB or time columns on the original's side.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PINNED = "eee16f97af70d3b78de2773504eb5ff3cb10b05a"  # SDS-Inf/SDS-Inf-Code, the published resources' commit
DEFAULT_ORIGINAL = Path(__file__).resolve().parents[1] / "third_party" / "SDS-Inf-Code"
COUNTS = ["LS_NUM_TARGETS", "NNZ", "NNZ_SENT", "ROWS_SENT", "MSG_NUM", "CHUNKS_SENT", "PUBLISH_NUM", "EMPTY_TARGETS"]
BYTES = ["MSG_TOTAL_SIZE", "PUBLISH_TOTAL_SIZE"]
MAXIMA = ["MSG_MAX_SIZE", "MAX_ROW_NNZ"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, default=DEFAULT_ORIGINAL, help="a checkout of SDS-Inf-Code")
    parser.add_argument("--data", type=Path, help="a Graph Challenge directory (default: generate one)")
    parser.add_argument("--neurons", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=120)
    parser.add_argument("--inputs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--variant", default="queue", choices=["queue", "object", "serial"], help="deployed only")
    parser.add_argument("--bfr", type=int, help="the invocation tree's fan-out (default: the workers, one level)")
    parser.add_argument("--levels", type=int, default=1, help="the invocation tree's depth (the payload's nlevels)")
    parser.add_argument(
        "--in-process", action="store_true",
        help="run the original's Queue functions in this process instead of deploying it (quicker: no SNS, "
        "SQS, DynamoDB or timings on its side)",
    )  # fmt: skip
    parser.add_argument("--wire", default="original", help="skydeck's wire with --in-process: original or compact")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each deployed run may take")
    args = parser.parse_args()
    if args.layers != 120 and not args.in_process:
        raise SystemExit("--layers: the original's layer files always hold 120 layers (LayerStats.LS_NUM_LAYERS)")
    if args.in_process and args.variant != "queue":
        raise SystemExit("--variant: --in-process runs the original's Queue functions only")
    if args.wire != "original" and not args.in_process:
        raise SystemExit("--wire: a payload runs skydeck's original wire; --wire compact needs --in-process")
    module = load_original(args.original)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or generated(Path(tmp) / "gc", args.neurons, args.layers, args.inputs)
        from backend.sdsinf.data import load_dataset

        net, inputs, truth = load_dataset(data, args.neurons, args.layers)
        inputs = inputs[: args.inputs]
        if not args.in_process:
            return run_deployed(args, data, net.layers, inputs, truth, Path(tmp))
        t = time.perf_counter()
        theirs, their_categories = run_original(module, net.layers, net.bias, inputs, args.workers)
        their_s = time.perf_counter() - t
        print(f"the original's functions: {their_s:.0f} s", flush=True)
        t = time.perf_counter()
        ours, our_categories = run_skydeck(data, args.neurons, args.layers, args.inputs, args.workers, args.wire)
        print(f"skydeck's run on the local cloud: {time.perf_counter() - t:.0f} s", flush=True)
    return report(theirs, ours, their_categories, our_categories, truth, args)


def load_original(root: Path) -> ModuleType:
    """The original's Queue worker, imported as it is (its module creates boto3 clients: no call is made)."""
    path = root / "src" / "sds-inf-queue" / "sds_inf_queue_worker.py"
    if not path.is_file():
        raise SystemExit(
            f"no original at {root}: make original (a checkout of SDS-Inf/SDS-Inf-Code at {PINNED[:7]}), "
            "or pass --original DIR"
        )
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode == 0 and head.stdout.strip() != PINNED:
        print(f"warning: {root} is at {head.stdout.strip()[:7]}, not the pinned {PINNED[:7]}", file=sys.stderr)
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    spec = importlib.util.spec_from_file_location("sds_inf_queue_worker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated(root: Path, neurons: int, layers: int, inputs: int) -> Path:
    from backend.sdsinf.data import generate

    generate(root, neurons, layers, inputs, seed=0, density=(0.2, 0.3035))  # as the c1 benchmark's data
    return root


# -- the original ------------------------------------------------------------------------------------
def run_original(
    mod: ModuleType, layers: list[sp.csr_matrix], bias: float, inputs: sp.csr_matrix, workers: int
) -> tuple[dict[str, float], np.ndarray]:
    from lambda_src.sdsinf.partition import plans, row_partition
    from lambda_src.sdsinf.wire import nnz_cap

    neurons, batch = layers[0].shape[0], inputs.shape[0]
    owner = row_partition(neurons, workers)
    layer_plans = plans(layers, [owner] * (len(layers) + 1))
    mod.BIAS = bias
    mod.stats = np.zeros(mod.NUM_METRICS)
    loc = {"expt_id": 1, "filename": "1_benchmark_queue.csv", "bucket": "-", "subfolder": "-"}
    stats = [mod.LayerStats(worker_id=k, metrics_loc=loc) for k in range(workers)]
    # nnp.K, as readDNNP reads it: (output neuron, input neuron, weight) lines of K's output neurons,
    # sorted; train.K, as readInferenceData: (input, neuron, value) lines of K's neurons; then, as the
    # handler does for a batch of all the inputs, H = infDataCSR.transpose()
    weights = [[_from_lines(w.T, owner == k, (neurons, neurons)) for w in layers] for k in range(workers)]
    held = [_from_lines(inputs.T, owner == k, (neurons, batch)).T.tocsr().transpose() for k in range(workers)]
    totals: dict[str, float] = dict.fromkeys(COUNTS + BYTES + MAXIMA, 0.0)
    for layer, plan in enumerate(layer_plans):
        mod.MAX_NNZ_PER_MESSAGE = nnz_cap(layer)  # the handler sets it at layers 0, 25 and 35
        inbox: dict[int, list[tuple[int, list[str]]]] = {k: [] for k in range(workers)}
        for k in range(workers):
            h = held[k]
            counts = h.getnnz(axis=1)
            targets = sorted(dst for (src, dst) in plan.sends if src == k)
            stats[k].record_layer_start(layer=layer, targets=len(targets), nnz=h.getnnz())
            sent: list[str] = []
            for target in targets:
                row_dict = {int(r): int(counts[r]) for r in plan.sends[(k, target)]}
                totals["MAX_ROW_NNZ"] = max(totals["MAX_ROW_NNZ"], max(row_dict.values(), default=0))
                row_dict = dict(sorted(row_dict.items(), key=lambda item: item[1], reverse=True))
                row_dict = {r: n for r, n in row_dict.items() if n != 0}
                if not row_dict:
                    totals["EMPTY_TARGETS"] += 1  # db_write_norow_targets: one item per empty target
                    continue
                messages = mod.send_row_extractor(h, row_dict, stats[k], layer)
                sent += messages
                inbox[target].append((k, messages))
            sizes = [mod.utf8len(m) for m in sent]
            publishes = _publish_batches(sizes, mod.MAX_ALLOWED_BATCH_MESSAGE_SIZE)
            totals["LS_NUM_TARGETS"] += len(targets)
            totals["MSG_NUM"] += len(sizes)
            totals["CHUNKS_SENT"] += len(sizes)
            totals["MSG_TOTAL_SIZE"] += sum(sizes)
            totals["MSG_MAX_SIZE"] = max([totals["MSG_MAX_SIZE"], *sizes])
            totals["PUBLISH_NUM"] += len(publishes)
            totals["PUBLISH_TOTAL_SIZE"] += sum(publishes)
        for k in range(workers):
            z = weights[k][layer] * held[k]
            # process_messages: a source's chunks are summed into one matrix as they come (here in the
            # order sent, sources in id order), then each source's is multiplied in
            for _source, messages in sorted(inbox[k], key=lambda item: item[0]):
                recv_csr = mod.bytes_string_to_csr_new(messages[0], batch, neurons)
                for message in messages[1:]:
                    recv_csr += mod.bytes_string_to_csr_new(message, batch, neurons)
                recv_csr.eliminate_zeros()
                if recv_csr.getnnz() > 0:
                    z += weights[k][layer] * recv_csr
            held[k] = mod.multiply_post_process(z)
    for k in range(workers):
        totals["NNZ"] += float(stats[k].data[: len(layers), mod.LayerStats.LS_NNZ].sum())
        totals["NNZ_SENT"] += float(stats[k].data[: len(layers), mod.LayerStats.LS_NNZ_SENT].sum())
        totals["ROWS_SENT"] += float(stats[k].data[: len(layers), mod.LayerStats.LS_ROWS_SENT].sum())
    alive = np.zeros(batch, dtype=bool)
    for h in held:
        alive |= np.asarray((abs(h) > 0).sum(axis=0)).ravel() > 0
    return totals, np.flatnonzero(alive) + 1


def _from_lines(matrix: sp.spmatrix, keep: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """The rows of `matrix` that `keep` marks, as the original's readers build them from a file of
    (row, column, value) lines sorted by row, then column: `csr_matrix((vals, (rows, cols)))`."""
    from original_files import owned_entries

    coo = sp.coo_matrix(matrix)
    rows, cols, vals = owned_entries(coo, keep[coo.row])
    return sp.csr_matrix((vals, (rows, cols)), shape=shape)


def _publish_batches(sizes: list[int], limit: int) -> list[int]:
    """prepare_message_batches' batches, restated: up to 10 messages, sent before one would bring the
    batch to the limit; their sizes."""
    batches: list[int] = []
    count, total = 0, 0
    for size in sizes:
        if count == 10 or total + size >= limit:
            if count >= 1:
                batches.append(total)
            count, total = 1, size
        else:
            count, total = count + 1, total + size
    if count > 0:
        batches.append(total)
    return batches


# -- skydeck -------------------------------------------------------------------------------------------
def run_skydeck(
    data: Path, neurons: int, layers: int, inputs: int, workers: int, wire: str
) -> tuple[dict[str, float], np.ndarray]:
    from sdsinf_cloud import uploaded_cloud

    from backend.sdsinf.plans import RunPlan

    with uploaded_cloud("beside", layers, inputs, seed=0, data=data, neurons=neurons) as runs:
        plan = RunPlan(
            f"beside_{neurons}n_{workers}w_{inputs}bs_queue", "beside", "queue", workers, num_data=inputs,
            wire=wire, poll_timeout_s=600,
        )  # fmt: skip
        started = runs.start(plan)
        summary = runs.follow(started.run_id, timeout_s=7200, idle_timeout_s=1800)
        if summary.state != "SUCCEEDED":
            raise SystemExit(f"skydeck's run ended {summary.state}")
        bucket = runs.out["MetricsBucket"]
        totals: dict[str, float] = dict.fromkeys(COUNTS + BYTES + MAXIMA, 0.0)
        for k in range(workers):
            body = runs._get(bucket, f"{started.prefix}/layerstats-worker-{k:04d}.csv").decode()
            for row in csv.DictReader(io.StringIO(body)):
                for column in COUNTS + BYTES:
                    if column in row:
                        totals[column] += float(row[column])
                totals["MSG_MAX_SIZE"] = max(totals["MSG_MAX_SIZE"], float(row["MSG_MAX_SIZE"]))
        metrics = runs.show(started.run_id)["metrics"]
        totals["EMPTY_TARGETS"] = float(metrics["METRIC_DYNAMODB_ITEMS_WRITTEN"])
        totals["MAX_ROW_NNZ"] = float(metrics["METRIC_MAX_ROW_NNZ"])
        categories = runs._get(bucket, f"{started.prefix}/categories.tsv").decode().split()
        return totals, np.asarray([int(c) for c in categories], dtype=np.int64)


# -- both deployed --------------------------------------------------------------------------------------
SUBFOLDER = "expts/1024/beside"  # its last part names skydeck's uploaded dataset, as in a published payload


def payload(
    buckets: dict[str, str], config: str, args: argparse.Namespace, inputs: int, workers: int
) -> dict[str, Any]:
    """The published payloads' shape (resources/c1_1024n_8w_10000bs_payload_queue.json, _object, and
    b1_..._serial.json) for this run."""
    loc = {part: {"bucket": buckets[part], "subfolder": SUBFOLDER} for part in ("weights", "inference", "connectivity")}
    doc: dict[str, Any] = {
        "data_params": {
            "weights_loc": loc["weights"], "inf_data_loc": loc["inference"], "connectivity_loc": loc["connectivity"],
            "metrics_loc": {
                "bucket": buckets["metrics"], "subfolder": f"sds-inf-{args.variant}-expts/1024/{config}",
                "filename": f"1_{config}.csv", "expt_id": 1,
            },
        },
        "invoc_params": {"bfr": args.bfr or workers, "nlevels": args.levels, "total_nworkers": workers},
        "model_params": {
            "numNeurons": args.neurons, "numLayers": args.layers, "numData": inputs, "batchSize": inputs,
            "numBatches": 1,
        },
    }  # fmt: skip
    if args.variant != "queue":
        doc["data_params"]["hidden_loc"] = {"bucket": buckets["hidden"], "subfolder": f"{config}/1"}
    if args.variant == "serial":
        doc["parent_params"] = {"p_level": 1}
    return doc


def run_deployed(
    args: argparse.Namespace, data: Path, layers: list[sp.csr_matrix], inputs: sp.csr_matrix,
    truth: np.ndarray | None, tmp: Path,
) -> int:  # fmt: skip
    """The original's functions deployed as Lambda functions beside skydeck's, one payload sent to each,
    and the files both write at metrics_loc compared."""
    import original_compare
    import original_files
    from original_lambda import OriginalCloud, categories_from_log, invoke_and_collect, metric_keys
    from sdsinf_cloud import uploaded_cloud

    from backend.stacks.lambda_layers import RUNTIME

    batch, variant = inputs.shape[0], args.variant
    workers = 1 if variant == "serial" else args.workers
    config = f"beside_{args.neurons}n_{workers}w_{batch}bs_{variant}"
    folders = original_files.write(tmp / "original", layers, inputs, workers)
    with uploaded_cloud("beside", args.layers, batch, seed=0, data=data, neurons=args.neurons) as runs:
        ctx, clients = runs.ctx, runs.ctx.clients
        account = clients.client("sts").get_caller_identity()["Account"]
        cloud = OriginalCloud(clients.client, clients.env(), clients.profile.region, account)
        deployment = cloud.deploy(args.original, variant, workers, ctx.stacks.local_numpy_layer(), RUNTIME)
        for change in deployment.changes:
            if change.old in (args.original / change.path).read_text():
                print(f"changed in the original: {change.path}: {change.why}")
        cloud.upload(folders, deployment.buckets, SUBFOLDER)
        logs = clients.home.logs_dir / "lambda"
        theirs_payload = payload(deployment.buckets, config, args, batch, workers)
        t = time.perf_counter()
        theirs = cloud.run(deployment, theirs_payload, args.timeout, logs / f"{deployment.worker}.log")
        print(f"the original, deployed: {time.perf_counter() - t:.0f} s", flush=True)
        out = runs.out
        ours_buckets = {
            "weights": out["WeightsBucket"], "inference": out["InferenceBucket"],
            "connectivity": out["WeightsBucket"], "metrics": out["MetricsBucket"], "hidden": out["IntermediateBucket"],
        }  # fmt: skip
        ours_payload = payload(ours_buckets, config, args, batch, workers)
        function = out[{"queue": "QueueCoordinatorFunction", "object": "ObjectCoordinatorFunction"}.get(
            variant, "SerialFunction"
        )]  # fmt: skip
        t = time.perf_counter()
        ours = invoke_and_collect(
            clients.client, function, variant, ours_payload, args.timeout, logs / f"{function}.log"
        )
        print(f"skydeck, deployed: {time.perf_counter() - t:.0f} s", flush=True)
        their_categories, complete = categories_from_log((logs / f"{deployment.worker}.log").read_text())
        our_categories = _categories_at(runs)
    # metric_keys: the master row first, then W0_LS.csv ... in worker order, alike on both sides
    their_files = [theirs[k] for k in metric_keys(theirs_payload, variant)]
    our_files = [ours[k] for k in metric_keys(ours_payload, variant)]
    master = original_compare.master_lines(variant, their_files[0], our_files[0])
    tree = f"bfr {args.bfr or workers}, nlevels {args.levels}"
    title = f"{variant}, {workers} workers ({tree}), {args.neurons} x {args.layers}, {batch} inputs, one batch"
    outside = original_compare.print_table(f"{title}: master_metrics", master)
    if variant != "serial":
        their_files, our_files = their_files[1:], our_files[1:]
        lines, differing, cells = original_compare.layer_lines(variant, their_files, our_files, args.layers)
        outside += original_compare.print_table(f"{title}: W{{K}}_LS.csv, over every worker and layer", lines)
        where = ", ".join(f"{column} in {n}" for column, n in differing.items()) or "none"
        print(f"count columns that differ row by row ({cells} (worker, layer) rows): {where}")
    truthful = truth is not None and their_categories == sorted(int(c) for c in truth if c <= batch)
    print(
        f"categories: original {len(their_categories)}{'' if complete else ' (its log did not print them all)'}, "
        f"skydeck {len(our_categories)}, identical {their_categories == our_categories}, equal to the truth "
        f"{truthful}"
    )
    if their_categories != our_categories or not complete:
        outside.append("categories")
    if outside:
        print(f"outside tolerance: {', '.join(outside)}", file=sys.stderr)
        return 1
    return 0


def _categories_at(runs: Any) -> list[int]:
    """skydeck's categories for the run its function started from the payload (the newest run)."""
    newest = max(runs.runs(), key=lambda run: run.run_id).run_id
    runs.follow(newest, timeout_s=600)  # its summary is written after the files at metrics_loc
    body = runs._get(runs.out["MetricsBucket"], f"runs/{newest}/categories.tsv").decode()
    return sorted(int(c) for c in body.split())


# -- the table ---------------------------------------------------------------------------------------------
def report(
    theirs: dict[str, float], ours: dict[str, float], their_cats: np.ndarray, our_cats: np.ndarray,
    truth: np.ndarray | None, args: argparse.Namespace,
) -> int:  # fmt: skip
    print(
        f"\nQueue, {args.workers} workers, {args.neurons} neurons x {args.layers} layers, {args.inputs} inputs, "
        f"one batch; skydeck --wire {args.wire}; sums over workers and layers"
    )
    print(f"{'column':<22}{'original':>16}{'skydeck':>16}{'ratio':>8}  within")
    outside: list[str] = []
    tolerance: Callable[[str], float] = lambda c: 0.02 if c in COUNTS else 0.05  # noqa: E731
    for column in COUNTS + BYTES + MAXIMA:
        a, b = theirs[column], ours[column]
        ratio = b / a if a else (1.0 if b == 0 else float("inf"))
        ok = abs(ratio - 1.0) <= tolerance(column)
        if not ok:
            outside.append(column)
        print(f"{column:<22}{a:>16,.0f}{b:>16,.0f}{ratio:>8.3f}  {'yes' if ok else 'NO'} (±{tolerance(column):.0%})")
    same = np.array_equal(np.sort(their_cats), np.sort(our_cats))
    truthful = truth is not None and np.array_equal(np.sort(truth[truth <= args.inputs]), np.sort(our_cats))
    print(
        f"categories: original {their_cats.size}, skydeck {our_cats.size}, identical {same}, "
        f"equal to the truth {truthful}"
    )
    if not same:
        outside.append("categories")
    if outside:
        print(f"outside tolerance: {', '.join(outside)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
