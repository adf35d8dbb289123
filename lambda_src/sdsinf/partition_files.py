"""A dataset cut into per-worker files, as the original's workers read theirs: each worker of a
distributed run reads its own part of the model and the inputs, never the whole of either.

The original keeps, per experiment folder, `nnp.K` (worker K's weights), `train.K` (worker K's
inputs) and `conn.L` (who sends which rows to whom at layer L). skydeck makes the same set once per
(model, inputs, partition, worker count) from an uploaded dataset and keeps it beside the dataset:

- weights bucket  `DATA/parts/SET/nnp.K.npz`:   worker K's columns of every layer (the output
  neurons it computes), with the network's size, depth and bias;
- inference bucket `DATA/parts/SET/train.K.npz`: every input's values at the neurons K holds at
  layer 0;
- connectivity bucket `DATA/parts/SET/conn.npz`: the owners of every layer's neurons and every
  layer's (row, source, target) sends, the original's conn.L files in one.

SET names the partition, the worker count and the uploaded files' ETags, so a re-upload never
reuses a stale set. conn.npz is written last: where it exists, the set is whole.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf.npz_codec import pack_matrix, unpack_matrix, unpack_network
from lambda_src.sdsinf.partition import LayerPlan, make_partition, plans
from lambda_src.sdsinf.stored import object_exists


@dataclass(frozen=True)
class WorkerPart:
    """What one worker reads: its columns of each layer, its inputs, and the run's plan."""

    neurons: int
    bias: float
    edges: int  # the whole network's, for the run's edges per second
    columns: list[sp.csc_matrix]  # columns[l] = W_l[:, the output neurons this worker computes]
    inputs: sp.csr_matrix  # n_data x (neurons this worker holds at layer 0)
    owners: list[np.ndarray]  # owners[l] = the worker holding each input neuron of layer l
    plans: list[LayerPlan]

    @property
    def depth(self) -> int:
        return len(self.columns)


def set_name(partition: str, workers: int, network_etag: str, inputs_etag: str) -> str:
    network, inputs = (etag.strip('"')[:12] for etag in (network_etag, inputs_etag))  # S3 quotes ETags
    return f"{partition}-{workers}w-{network}-{inputs}"


def locations(buckets: dict[str, str], data: str, name: str) -> dict[str, Any]:
    """The event's `parts`: where each kind of file of the set lies."""
    prefix = f"{data}/parts/{name}"
    return {
        "weights": {"bucket": buckets["weights"], "prefix": prefix},
        "inputs": {"bucket": buckets["inputs"], "prefix": prefix},
        "connectivity": {"bucket": buckets["connectivity"], "key": f"{prefix}/conn.npz"},
    }


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def prepare(s3: Any, buckets: dict[str, str], data: str, partition: str, workers: int) -> dict[str, Any]:
    """The per-worker set for this run's shape, made now if it is not kept yet. `buckets` names the
    weights, inputs and connectivity buckets; the uploaded dataset is `DATA/network.npz` and
    `DATA/inputs.npz`. Returns the event's `parts`."""
    net_etag = s3.head_object(Bucket=buckets["weights"], Key=f"{data}/network.npz")["ETag"]
    in_etag = s3.head_object(Bucket=buckets["inputs"], Key=f"{data}/inputs.npz")["ETag"]
    where = locations(buckets, data, set_name(partition, workers, net_etag, in_etag))
    conn = where["connectivity"]
    if object_exists(s3, conn["bucket"], conn["key"]):
        return where
    net = unpack_network(s3.get_object(Bucket=buckets["weights"], Key=f"{data}/network.npz")["Body"].read())
    y = unpack_matrix(s3.get_object(Bucket=buckets["inputs"], Key=f"{data}/inputs.npz")["Body"].read())
    owners = make_partition(partition, net.layers, workers)
    layer_plans = plans(net.layers, owners)
    csc = [sp.csc_matrix(w) for w in net.layers]
    y_csc = sp.csc_matrix(y)
    for k in range(workers):
        arrays: dict[str, Any] = {
            "neurons": np.int64(net.neurons),
            "bias": np.float64(net.bias),
            "depth": np.int64(net.depth),
            "edges": np.int64(net.edges),
        }
        for layer, w in enumerate(csc):
            part = w[:, np.flatnonzero(owners[layer + 1] == k)]
            arrays[f"l{layer}_indptr"], arrays[f"l{layer}_indices"] = part.indptr, part.indices
            arrays[f"l{layer}_data"], arrays[f"l{layer}_cols"] = part.data, np.int64(part.shape[1])
        _put(s3, where["weights"]["bucket"], f"{where['weights']['prefix']}/nnp.{k}.npz", _npz(**arrays))
        mine = y_csc[:, np.flatnonzero(owners[0] == k)]
        _put(s3, where["inputs"]["bucket"], f"{where['inputs']['prefix']}/train.{k}.npz", pack_matrix(mine))
    sends: dict[str, Any] = {"owners": np.stack(owners).astype(np.int32)}
    for layer, plan in enumerate(layer_plans):
        pairs = sorted(plan.sends)
        sends[f"l{layer}_src"] = np.repeat([s for s, _ in pairs], [plan.sends[p].size for p in pairs]).astype(np.int32)
        sends[f"l{layer}_dst"] = np.repeat([d for _, d in pairs], [plan.sends[p].size for p in pairs]).astype(np.int32)
        sends[f"l{layer}_row"] = (
            np.concatenate([plan.sends[p] for p in pairs]).astype(np.int32) if pairs else np.zeros(0, np.int32)
        )
    _put(s3, conn["bucket"], conn["key"], _npz(**sends))  # last: the set is whole from here on
    return where


def _put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")


def load_part(get: Callable[[str, str], bytes], parts: dict[str, Any], k: int) -> WorkerPart:
    """Worker k's files of a set: its columns, its inputs, and the plan every worker shares."""
    conn = parts["connectivity"]
    with np.load(io.BytesIO(get(conn["bucket"], conn["key"])), allow_pickle=False) as z:
        owners = [row.astype(np.int32) for row in z["owners"]]
        layer_plans = []
        for layer in range(len(owners) - 1):
            src, dst, row = z[f"l{layer}_src"], z[f"l{layer}_dst"], z[f"l{layer}_row"]
            mine = (src == k) | (dst == k)  # a worker only ever uses the sends it takes part in
            src, dst, row = src[mine], dst[mine], row[mine]
            sends: dict[tuple[int, int], np.ndarray] = {}
            if src.size:
                cut = np.flatnonzero((np.diff(src) != 0) | (np.diff(dst) != 0)) + 1
                for a, b in zip(np.concatenate([[0], cut]), np.concatenate([cut, [src.size]]), strict=True):
                    sends[(int(src[a]), int(dst[a]))] = row[a:b].astype(np.int64)
            layer_plans.append(LayerPlan(owners[layer], owners[layer + 1], sends))
    w = parts["weights"]
    with np.load(io.BytesIO(get(w["bucket"], f"{w['prefix']}/nnp.{k}.npz")), allow_pickle=False) as z:
        n = int(z["neurons"])
        columns = [
            sp.csc_matrix((z[f"l{i}_data"], z[f"l{i}_indices"], z[f"l{i}_indptr"]), shape=(n, int(z[f"l{i}_cols"])))
            for i in range(int(z["depth"]))
        ]
        bias, edges = float(z["bias"]), int(z["edges"])
    i = parts["inputs"]
    inputs = unpack_matrix(get(i["bucket"], f"{i['prefix']}/train.{k}.npz"))
    return WorkerPart(n, bias, edges, columns, inputs, owners, layer_plans)
