"""Per-input results, as the original reports them: for each input, the neuron with the largest final
activation (`max_row`), that activation (`max_val`) and the worker that holds that neuron.

The original's Queue and Object workers take, after a batch's last layer, `H.argmax(axis=0)` and
`H.max(axis=0)` over their own neurons: the lowest neuron id among equal maxima, and neuron 0 with
0.0 for an input with no nonzero left. Its Serial worker takes only `H.max(axis=0)` and prints the
maxima (its comment speaks of argmax; its code takes none); skydeck's Serial run reports the neuron
as the Queue worker would. Worker 0 keeps, per input, the
first worker whose maximum is strictly larger than what it holds (starting from 0.0), and prints
the result to its log ("OVERALL INFERENCE RESULTS"). skydeck takes the workers in id order (the
original in the order their batch-end messages came), prints the same block, and also writes
`results.csv` beside the run's other files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from lambda_src.sdsinf.model import CAP

COLUMNS = ("SAMPLE", "MAX_ROW", "MAX_VAL", "WORKER_ID")


@dataclass(frozen=True)
class Maxima:
    """One worker's (or the run's) per-input argmax neuron and maximum, over consecutive inputs."""

    rows: np.ndarray  # neuron ids
    vals: np.ndarray  # float32
    workers: np.ndarray | None = None

    @classmethod
    def of_block(cls, held: np.ndarray, neuron_ids: np.ndarray) -> Maxima:
        """From a worker's final (inputs x its neurons) block; `neuron_ids` ascending."""
        if held.shape[1] == 0:
            return cls(np.zeros(held.shape[0], dtype=np.int64), np.zeros(held.shape[0], dtype=np.float32))
        at = np.argmax(held, axis=1)
        vals = held[np.arange(held.shape[0]), at].astype(np.float32)
        rows = np.where(vals > 0, np.asarray(neuron_ids)[at], 0)
        return cls(rows.astype(np.int64), vals)

    @classmethod
    def of_live(cls, count: int, first: int, ids: np.ndarray, yt: np.ndarray, settled: np.ndarray) -> Maxima:
        """From the serial kernel's live rows: `count` inputs from input `first`; computed rows' activations
        `yt` (neurons x rows, for `ids`), settled rows at the cap in every neuron, the rest dead."""
        rows = np.zeros(count, dtype=np.int64)
        vals = np.zeros(count, dtype=np.float32)
        if ids.size:
            at = np.argmax(yt, axis=0)
            got = yt[at, np.arange(ids.size)]
            rows[ids - first] = np.where(got > 0, at, 0)
            vals[ids - first] = got
        vals[np.asarray(settled, dtype=np.int64) - first] = CAP  # neuron 0 is the first at the cap
        return cls(rows, vals)

    @classmethod
    def joined(cls, parts: list[Maxima]) -> Maxima:
        """Batches one after another."""
        if not parts:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        return cls(np.concatenate([p.rows for p in parts]), np.concatenate([p.vals for p in parts]))


def collate(per_worker: list[Maxima]) -> Maxima:
    """Worker 0's handle_stats_string over every worker, in id order: strictly larger replaces."""
    n = per_worker[0].rows.size if per_worker else 0
    rows, vals, workers = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.int64)
    for k, m in enumerate(per_worker):
        better = m.vals > vals
        rows[better], vals[better], workers[better] = m.rows[better], m.vals[better], k
    return Maxima(rows, vals, workers)


def to_csv(result: Maxima) -> str:
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    workers = result.workers if result.workers is not None else np.zeros(result.rows.size, dtype=np.int64)
    for i, (r, v, w) in enumerate(zip(result.rows.tolist(), result.vals.tolist(), workers.tolist(), strict=True)):
        out.write(f"{i},{r},{v:g},{w}\n")
    return out.getvalue()


def log_block(result: Maxima) -> str:
    """The original's printed block: the inputs with a nonzero maximum, `(max_row, input)  max_val`."""
    keep = np.flatnonzero(result.vals)
    lines = [
        "*************************************************",
        "OVERALL INFERENCE RESULTS",
        "*************************************************",
        f"master_results nnz                      :  {keep.size}",
        *(f"  ({int(result.rows[i])}, {int(i)})\t{float(result.vals[i])}" for i in keep),
        "*************************************************",
        "END OF OVERALL INFERENCE RESULTS",
        "*************************************************",
    ]
    return "\n".join(lines)
