"""Which worker owns which neurons, and which activation rows must travel between workers.

Activations are stored neuron-major on the workers (a worker holds the rows of Y^T for the
neurons it owns). To compute its output neurons for layer l, a worker needs the rows of every
input neuron feeding them; those it does not own are sent to it by their owners.

- `row_partition`: the original's 1-D partition, contiguous equal blocks, the same every layer.
- `greedy_partition`: per layer, give each output neuron to the worker that already owns most of
  its inputs, under an equal-size cap, so that fewer rows cross between workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf.names import PARTITIONS


def row_partition(neurons: int, workers: int) -> np.ndarray:
    if workers < 1 or workers > neurons:
        raise ValueError(f"workers must be between 1 and {neurons}, not {workers}")
    return (np.arange(neurons) * workers // neurons).astype(np.int32)


@dataclass(frozen=True)
class LayerPlan:
    """sends[(src, dst)] = sorted input-neuron ids that worker src sends to worker dst."""

    owner_in: np.ndarray
    owner_out: np.ndarray
    sends: dict[tuple[int, int], np.ndarray]

    @property
    def rows_sent(self) -> int:
        return int(sum(v.size for v in self.sends.values()))


def plan_layer(w: sp.csr_matrix, owner_in: np.ndarray, owner_out: np.ndarray) -> LayerPlan:
    coo = sp.coo_matrix(w)
    src = owner_in[coo.row]
    dst = owner_out[coo.col]
    cross = src != dst
    pairs: dict[tuple[int, int], np.ndarray] = {}
    if cross.any():
        key = src[cross].astype(np.int64) * (owner_out.max() + 1) + dst[cross]
        rows = coo.row[cross]
        for k in np.unique(key):
            s, d = divmod(int(k), int(owner_out.max()) + 1)
            pairs[(s, d)] = np.unique(rows[key == k])
    return LayerPlan(owner_in, owner_out, pairs)


def greedy_partition(layers: list[sp.csr_matrix], workers: int) -> list[np.ndarray]:
    """owners[l] = owner of each input neuron of layer l (owners[L] for the final outputs)."""
    neurons = layers[0].shape[0]
    cap = -(-neurons // workers)
    owners = [row_partition(neurons, workers)]
    for w in layers:
        prev = owners[-1]
        csc = sp.csc_matrix(w)
        votes = np.zeros((neurons, workers), dtype=np.int32)
        for j in range(neurons):
            inputs = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
            np.add.at(votes[j], prev[inputs], 1)
        owner = np.full(neurons, -1, dtype=np.int32)
        load = np.zeros(workers, dtype=np.int64)
        best = votes.max(axis=1)
        for j in np.argsort(-best, kind="stable"):  # the most one-sided neurons choose first
            for k in np.argsort(-votes[j], kind="stable"):
                if load[k] < cap:
                    owner[j] = k
                    load[k] += 1
                    break
        owners.append(owner)
    return owners


def plans(layers: list[sp.csr_matrix], owners: list[np.ndarray]) -> list[LayerPlan]:
    return [plan_layer(w, owners[i], owners[i + 1]) for i, w in enumerate(layers)]


def component_partition(layers: list[sp.csr_matrix], workers: int) -> list[np.ndarray]:
    """Per layer, keep whole connected components of the layer's bipartite graph on one worker.

    In a RadiX-Net layer every output neuron reads one residue class of inputs, so the layer splits
    into independent components. Giving each component (its inputs and its outputs) to one worker
    means every activation row travels to exactly one worker - the owner of the component that
    consumes it - instead of to every worker with a consumer (the 1-D partition's cost). Components
    are packed onto workers largest first, balancing output neurons. With a single component (a
    fully mixing layer) this falls back to the 1-D partition for that layer.
    """
    from scipy.sparse.csgraph import connected_components

    neurons = layers[0].shape[0]
    owners = [row_partition(neurons, workers)]
    for w in layers:
        n = w.shape[0]
        adj = sp.bmat([[None, sp.csr_matrix(w)], [sp.csr_matrix(w).T, None]], format="csr")
        count, labels = connected_components(adj, directed=False)
        col_labels = labels[n:]
        if count < workers:
            owners.append(row_partition(neurons, workers))
            continue
        sizes = np.bincount(col_labels, minlength=count)
        load = np.zeros(workers, dtype=np.int64)
        comp_owner = np.zeros(count, dtype=np.int32)
        for c in np.argsort(-sizes, kind="stable"):
            k = int(np.argmin(load))
            comp_owner[c] = k
            load[k] += sizes[c]
        owners.append(comp_owner[col_labels].astype(np.int32))
    return owners


def make_partition(name: str, layers: list[sp.csr_matrix], workers: int) -> list[np.ndarray]:
    """owners[l] for l = 0..L by partition name (deterministic: every worker computes the same)."""
    if name == "row":
        return [row_partition(layers[0].shape[0], workers)] * (len(layers) + 1)
    if name == "component":
        return component_partition(layers, workers)
    if name == "greedy":
        return greedy_partition(layers, workers)
    raise ValueError(f"partition must be one of {', '.join(PARTITIONS)}, not {name!r}")
