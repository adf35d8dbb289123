"""The Object variant: N Lambda workers exchange partial activations through an S3 bucket.

The coordinator starts the workers asynchronously as a tree (`bfr` children a node; roots are
workers 0..bfr-1, the children of worker k are (k+1)*bfr .. (k+1)*bfr+bfr-1). Worker k owns a block
of neurons (the 1-D row partition of the original). Per layer it writes, for every worker that
needs some of its neurons, one object with exactly those rows (an empty block is still written,
as the "nothing for you" mark), then polls its own inbox prefix until every expected sender has
written, and computes its output neurons. A worker that waits longer than `poll_timeout_s`
fails the run cleanly, naming itself and the layer. Worker 0 gathers everyone's results and
writes the run's files. Every key carries the run id, so a rerun never reads a failed run's data.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

import boto3
import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf import blocks
from lambda_src.sdsinf.metrics import LAYERSTATS_COLUMNS, METRICS_COLUMNS, to_csv
from lambda_src.sdsinf.model import CAP
from lambda_src.sdsinf.partition import plans, row_partition
from lambda_src.sdsinf.store import unpack_matrix, unpack_network


@lru_cache(maxsize=1)
def _session() -> Any:
    return boto3.session.Session()


def _s3() -> Any:
    return _session().client("s3")


def _get(bucket: str, key: str) -> bytes:
    return _s3().get_object(Bucket=bucket, Key=key)["Body"].read()


def _put(bucket: str, key: str, body: str | bytes) -> None:
    _s3().put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")


def _invoke(function: str, event: dict[str, Any]) -> None:
    _session().client("lambda").invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
    )


def children(k: int, bfr: int, total: int) -> list[int]:
    return [c for c in range((k + 1) * bfr, (k + 1) * bfr + bfr) if c < total]


def coordinator(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    ip = event["invoc_params"]
    total, bfr = int(ip["total_nworkers"]), max(1, int(ip.get("bfr", 1)))
    roots = list(range(min(bfr, total)))
    for k in roots:
        _invoke(event["worker_function"], {**event, "worker_id": k})
    return {"run_id": event["run_id"], "started": roots}


def worker(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    k = int(event["worker_id"])
    ip = event["invoc_params"]
    total, bfr = int(ip["total_nworkers"]), max(1, int(ip.get("bfr", 1)))
    for c in children(k, bfr, total):  # pass the start down the tree first: the others must not wait
        _invoke(event["worker_function"], {**event, "worker_id": c})
    out_bucket, prefix = event["metrics"]["bucket"], event["metrics"]["prefix"].rstrip("/")
    inter = event["intermediate"]["bucket"]
    started = time.time()
    try:
        result = _work(event, k, total, inter, out_bucket, prefix)
    except _Stalled as exc:
        _put(
            out_bucket,
            f"{prefix}/workers/failed-{k:04d}.json",
            json.dumps({"worker": k, "layer": exc.layer, "reason": str(exc)}),
        )
        result = {"worker": k, "failed": str(exc)}
    except Exception as exc:  # noqa: BLE001 - recorded for the run, then re-raised for Lambda's own log
        _put(
            out_bucket,
            f"{prefix}/workers/failed-{k:04d}.json",
            json.dumps({"worker": k, "layer": None, "reason": f"{type(exc).__name__}: {exc}"}),
        )
        raise
    if k == 0:
        _gather(event, total, out_bucket, prefix, started)
    return result


class _Stalled(RuntimeError):
    def __init__(self, message: str, layer: int) -> None:
        super().__init__(message)
        self.layer = layer


def _work(event: dict[str, Any], k: int, total: int, inter: str, out_bucket: str, prefix: str) -> dict[str, Any]:
    run_id = event["run_id"]
    timeout = float(event.get("poll_timeout_s", 60))
    net = unpack_network(_get(event["model"]["bucket"], event["model"]["key"]))
    y_all = unpack_matrix(_get(event["inputs"]["bucket"], event["inputs"]["key"]))
    n_data = min(int(event.get("model_params", {}).get("numData", y_all.shape[0])), y_all.shape[0])
    owner = row_partition(net.neurons, total)
    layer_plans = plans(net.layers, [owner] * (net.depth + 1))
    mine = np.flatnonzero(owner == k)
    held = y_all[:n_data].toarray()[:, mine].astype(np.float32)  # (batch x my neurons)
    csc = [sp.csc_matrix(w) for w in net.layers]
    stats: list[dict[str, Any]] = []
    totals = {
        "sent": 0,
        "bytes_sent": 0,
        "received": 0,
        "bytes_received": 0,
        "polls": 0,
        "comm": 0.0,
        "comp": 0.0,
        "compress": 0.0,
        "max_msg": 0,
    }
    for layer, plan in enumerate(layer_plans):
        t_layer = time.perf_counter()
        base = f"{run_id}/l{layer:04d}"
        sent_bytes = []
        position = {int(n): i for i, n in enumerate(mine)}
        for (src, dst), rows in plan.sends.items():
            if src != k:
                continue
            t = time.perf_counter()
            body = blocks.encode(rows, held[:, [position[int(r)] for r in rows]])
            totals["compress"] += time.perf_counter() - t
            t = time.perf_counter()
            _put(inter, f"{base}/to{dst:04d}/from{k:04d}.npz", body)
            totals["comm"] += time.perf_counter() - t
            sent_bytes.append(len(body))
        senders = sorted(src for (src, dst) in plan.sends if dst == k)
        inputs = {int(n): held[:, i] for i, n in enumerate(mine)}
        t = time.perf_counter()
        got = _wait_for(inter, f"{base}/to{k:04d}/", {f"from{s:04d}.npz" for s in senders}, timeout, layer, k, totals)
        totals["comm"] += time.perf_counter() - t
        for blob in got:
            ids, block = blocks.decode(blob)
            totals["received"] += 1
            totals["bytes_received"] += len(blob)
            for i, n in enumerate(ids):
                inputs[int(n)] = block[:, i]
        t = time.perf_counter()
        w = csc[layer]
        out = np.zeros((held.shape[0], mine.size), dtype=np.float32)
        for col, j in enumerate(mine):
            ins = w.indices[w.indptr[j] : w.indptr[j + 1]]
            if ins.size:
                z = np.stack([inputs[int(i)] for i in ins], axis=1) @ w.data[w.indptr[j] : w.indptr[j + 1]]
                out[:, col] = np.where(z != 0, np.clip(z + net.bias, 0.0, CAP), 0.0)
        held = out
        totals["comp"] += time.perf_counter() - t
        totals["sent"] += len(sent_bytes)
        totals["bytes_sent"] += sum(sent_bytes)
        totals["max_msg"] = max([totals["max_msg"], *sent_bytes])
        duration = time.perf_counter() - t_layer
        nnz = int(np.count_nonzero(held))
        rows_active = int(np.count_nonzero(held.any(axis=1)))
        stats.append(
            {
                "CONFIG": event["config"],
                "WORKER_ID": k,
                "LAYER": layer,
                "PUBLISH_NUM": len(sent_bytes),
                "PUBLISH_TOTAL_SIZE": sum(sent_bytes),
                "MSG_NUM": len(got),
                "MSG_TOTAL_SIZE": sum(len(b) for b in got),
                "LS_NUM_TARGETS": len(sent_bytes),
                "NNZ": nnz,
                "ROWS_SENT": int(sum(r.size for (s, _), r in plan.sends.items() if s == k)),
                "LAYER_DURATION": duration,
            }
        )
        _put(
            out_bucket,
            f"{prefix}/live/worker-{k:04d}/b001-l{layer:04d}.json",
            json.dumps(
                {
                    "worker": k,
                    "batch": 1,
                    "layer": layer,
                    "layers": net.depth,
                    "duration_s": duration,
                    "nnz": nnz,
                    "rows_active": rows_active,
                    "messages_sent": len(sent_bytes),
                    "bytes_sent": sum(sent_bytes),
                    "messages_received": len(got),
                    "bytes_received": sum(len(b) for b in got),
                    "publish_calls": len(sent_bytes),
                    "poll_calls": totals["polls"],
                    "compression_s": totals["compress"],
                }
            ),
        )
    alive = np.flatnonzero(held.any(axis=1))
    _put(out_bucket, f"{prefix}/layerstats-worker-{k:04d}.csv", to_csv(LAYERSTATS_COLUMNS, stats))
    done = {
        "worker": k,
        "alive": alive.tolist(),
        "n_data": n_data,
        "neurons": net.neurons,
        "layers": net.depth,
        "edges": net.edges,
        **totals,
    }
    _put(out_bucket, f"{prefix}/workers/done-{k:04d}.json", json.dumps(done))
    return {"worker": k, "alive": int(alive.size)}


def _wait_for(
    bucket: str, prefix: str, names: set[str], timeout: float, layer: int, k: int, totals: dict[str, Any]
) -> list[bytes]:
    if not names:
        return []
    deadline = time.time() + timeout
    found: dict[str, bytes] = {}
    s3 = _s3()
    while True:
        totals["polls"] += 1
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        for obj in listing.get("Contents", []):
            name = obj["Key"].rsplit("/", 1)[-1]
            if name in names and name not in found:
                found[name] = _get(bucket, obj["Key"])
        if len(found) == len(names):
            return [found[n] for n in sorted(found)]
        if time.time() > deadline:
            missing = sorted(n.removeprefix("from").removesuffix(".npz") for n in names - set(found))
            raise _Stalled(
                f"worker {k} waited {timeout:.0f}s at layer {layer} for worker(s) {', '.join(missing)}", layer
            )
        time.sleep(0.05)


def _gather(event: dict[str, Any], total: int, out_bucket: str, prefix: str, started: float) -> None:
    timeout = float(event.get("poll_timeout_s", 60)) * 2
    deadline = time.time() + timeout
    s3 = _s3()
    while True:
        keys = [
            o["Key"] for o in s3.list_objects_v2(Bucket=out_bucket, Prefix=f"{prefix}/workers/").get("Contents", [])
        ]
        failed = [k for k in keys if "/failed-" in k]
        done = [k for k in keys if "/done-" in k]
        if failed or len(done) == total or time.time() > deadline:
            break
        time.sleep(0.1)
    summary: dict[str, Any] = {
        "run_id": event["run_id"],
        "config": event["config"],
        "variant": "object",
        "workers": total,
        "runtime_s": time.time() - started,
    }
    if failed or len(done) < total:
        reasons = [json.loads(_get(out_bucket, k))["reason"] for k in failed]
        missing = total - len(done) - len(failed)
        if missing > 0 and not reasons:
            reasons.append(f"{missing} worker(s) never reported (not started, or crashed)")
        summary.update(
            state="FAILED",
            error="; ".join(reasons),
            inputs=0,
            categories=0,
            matches_truth=None,
            compute_s=0.0,
            edges_per_s=0.0,
        )
        _put(out_bucket, f"{prefix}/summary.json", json.dumps(summary))
        return
    parts = [json.loads(_get(out_bucket, k)) for k in sorted(done)]
    alive = sorted(set().union(*[set(p["alive"]) for p in parts]))
    cats = np.asarray(alive, dtype=np.int64) + 1
    truth_ok = None
    if event.get("truth"):
        truth = np.asarray([int(x) for x in _get(event["truth"]["bucket"], event["truth"]["key"]).decode().split()])
        truth_ok = bool(np.array_equal(np.sort(truth[truth <= parts[0]["n_data"]]), cats))
    comp = max(p["comp"] for p in parts)
    ip = event["invoc_params"]
    totals = {
        "CONFIG": event["config"],
        "BFR": ip.get("bfr", 1),
        "NLEVELS": ip.get("nlevels", 1),
        "TOTAL_NWORKERS": total,
        "NUM_NEURONS": parts[0]["neurons"],
        "NUM_LAYERS": parts[0]["layers"],
        "NUM_DATA": parts[0]["n_data"],
        "BATCH_SIZE": parts[0]["n_data"],
        "NUM_BATCHES": 1,
        "METRIC_PUBLISH_CALLS": sum(p["sent"] for p in parts),
        "METRIC_NUM_MESSAGES_SENT": sum(p["sent"] for p in parts),
        "METRIC_SIZE_MESSAGES_SENT": sum(p["bytes_sent"] for p in parts),
        "METRIC_RECEIVE_POLL_CALLS": sum(p["polls"] for p in parts),
        "METRIC_NUM_MESSAGES_RECEIVED": sum(p["received"] for p in parts),
        "METRIC_SIZE_MESSAGES_RECEIVED": sum(p["bytes_received"] for p in parts),
        "METRIC_ELAPSED_TIME_BATCH": summary["runtime_s"],
        "METRIC_ELAPSED_TIME_COMMUNICATION": max(p["comm"] for p in parts),
        "METRIC_ELAPSED_TIME_COMPUTATION": comp,
        "METRIC_ELAPSED_TIME_COMPRESSION": max(p["compress"] for p in parts),
        "METRIC_LAMBDA_RUNTIME": summary["runtime_s"],
        "METRIC_MAX_MESSAGE_SIZE": max(p["max_msg"] for p in parts),
    }
    _put(out_bucket, f"{prefix}/metrics.csv", to_csv(METRICS_COLUMNS, [totals]))
    _put(out_bucket, f"{prefix}/categories.tsv", "".join(f"{c}\n" for c in cats))
    n_data = parts[0]["n_data"]
    summary.update(
        state="SUCCEEDED",
        inputs=n_data,
        categories=int(cats.size),
        matches_truth=truth_ok,
        compute_s=comp,
        edges_per_s=n_data * parts[0]["edges"] / max(summary["runtime_s"], 1e-9),
    )
    _put(out_bucket, f"{prefix}/summary.json", json.dumps(summary))
