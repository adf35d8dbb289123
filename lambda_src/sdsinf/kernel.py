"""The one sparse kernel every variant uses, and the plain reference loop it is checked against.

Fast path: activations are kept as a dense float32 block of the rows still alive (a row that is
all zeros stays zero forever, so it is dropped and remembered), multiplied by the layer's sparse
matrix. The reference is the Graph Challenge's loop on scipy sparse matrices, one layer at a time.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf.model import CAP

MIN_ROWS_PER_PROCESS = 500  # below this a fork costs more than the slice's arithmetic


def reference(y: sp.csr_matrix, layers: list[sp.csr_matrix], bias: float) -> sp.csr_matrix:
    """Y <- min(max(Y.W + b, 0), 32) on the nonzeros of Y.W, layer by layer (sparse, plain)."""
    y = sp.csr_matrix(y, dtype=np.float32)
    for w in layers:
        z = (y @ w).tocsr()
        z.data += bias
        np.clip(z.data, 0.0, CAP, out=z.data)
        z.eliminate_zeros()
        y = z
    return y


def categories(y: sp.csr_matrix | np.ndarray, row_ids: np.ndarray | None = None) -> np.ndarray:
    """1-based ids of the rows with any nonzero."""
    nonzero = np.diff(y.tocsr().indptr) > 0 if sp.issparse(y) else np.any(y != 0, axis=1)
    alive = np.flatnonzero(nonzero)
    ids = alive if row_ids is None else row_ids[alive]
    return np.sort(ids) + 1


class LiveRows:
    """Activations of the rows still being computed: `ids` (0-based input ids) and a dense block `y`.

    `settled` holds ids of rows proven to stay at the cap in every neuron to the last layer (see
    `saturation_is_stable`); they are alive in the answer without further arithmetic.
    """

    def __init__(self, y: sp.csr_matrix | np.ndarray, ids: np.ndarray | None = None) -> None:
        dense = y.toarray() if sp.issparse(y) else np.asarray(y)
        dense = np.ascontiguousarray(dense, dtype=np.float32)
        ids = np.arange(dense.shape[0]) if ids is None else np.asarray(ids)
        keep = np.any(dense != 0, axis=1)
        self.y = dense[keep]
        self.ids = ids[keep]
        self.settled = np.empty(0, dtype=self.ids.dtype)
        self.width = dense.shape[1]

    def step(self, wt: sp.csr_matrix, bias: float) -> None:
        """One layer, given W transposed (CSR). Only nonzeros of Y.W get the bias: a zero stays zero."""
        if not self.ids.size:
            return
        z = (wt @ self.y.T).T  # (N x N sparse) x (N x m dense): scipy's multiply-by-dense path
        z = np.ascontiguousarray(z, dtype=np.float32)
        nz = z != 0
        z += bias * nz
        np.clip(z, 0.0, CAP, out=z)
        keep = np.any(z != 0, axis=1)
        if not keep.all():
            z = z[keep]
            self.ids = self.ids[keep]
        self.y = z

    def settle_saturated(self) -> None:
        """Retire rows at the cap in every neuron (only valid where `saturation_is_stable` says so)."""
        full = np.all(self.y == CAP, axis=1)
        if full.any():
            self.settled = np.concatenate([self.settled, self.ids[full]])
            self.ids = self.ids[~full]
            self.y = self.y[~full]

    def alive(self) -> np.ndarray:
        """0-based ids of every row alive now, computed or settled, sorted."""
        return np.sort(np.concatenate([self.ids, self.settled]))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The activations of `ids` (all alive), settled rows included."""
        where = {int(i): k for k, i in enumerate(self.ids)}
        out = np.full((len(ids), self.width), CAP, dtype=np.float32)
        for n, i in enumerate(ids):
            if int(i) in where:
                out[n] = self.y[where[int(i)]]
        return out


def saturation_is_stable(wt: sp.csr_matrix, bias: float) -> bool:
    """True when a row at the cap in every neuron stays there through this layer: every neuron has
    inputs, all weights are positive, and cap x (sum of its weights) + bias reaches the cap."""
    sums = np.asarray(wt.sum(axis=1)).ravel()
    fan_in = np.diff(wt.indptr)
    return bool(fan_in.min() > 0 and (wt.data > 0).all() and (CAP * sums + bias >= CAP).all())


def transposed(layers: list[sp.csr_matrix]) -> list[sp.csr_matrix]:
    """What `LiveRows.step` takes: each layer's W^T in CSR, made once per model."""
    return [sp.csr_matrix(w.T) for w in layers]


def settle_points(wts: list[sp.csr_matrix], bias: float) -> list[bool]:
    """settle[l]: after layer l, saturated rows may be retired, because every later layer keeps
    a saturated row saturated."""
    stable = [saturation_is_stable(wt, bias) for wt in wts]
    stable_from = np.logical_and.accumulate(stable[::-1])[::-1].tolist() + [True]
    return stable_from[1:]


def infer(y: sp.csr_matrix, layers: list[sp.csr_matrix], bias: float, shortcut: bool = True) -> LiveRows:
    """The live-row kernel; `shortcut` retires rows at the cap where that is exact (see settle_points)."""
    wts = transposed(layers)
    live = LiveRows(y)
    for wt, settle in zip(wts, settle_points(wts, bias), strict=True):
        live.step(wt, bias)
        if settle and shortcut:
            live.settle_saturated()
    return live


def infer_alive(
    y: sp.csr_matrix, layers: list[sp.csr_matrix], bias: float, processes: int | None = None, shortcut: bool = True
) -> np.ndarray:
    """The inputs still alive after the last layer (0-based), on every core: the inputs are split into
    contiguous slices, one forked process each (the network is shared by the fork, not copied), and
    the slices' answers joined. Rows never interact, so the answer is the single-process one."""
    n = processes if processes is not None else (os.cpu_count() or 1)
    rows = y.shape[0]
    if n <= 1 or rows < 2 * MIN_ROWS_PER_PROCESS or "fork" not in multiprocessing.get_all_start_methods():
        return infer(y, layers, bias, shortcut).alive()
    n = min(n, rows // MIN_ROWS_PER_PROCESS)
    bounds = np.linspace(0, rows, n + 1).astype(np.int64)
    fork = multiprocessing.get_context("fork")
    jobs = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        mine, theirs = fork.Pipe(duplex=False)
        proc = fork.Process(target=_slice_alive, args=(y[lo:hi], layers, bias, shortcut, theirs), daemon=True)
        proc.start()
        theirs.close()
        jobs.append((lo, proc, mine))
    found = []
    for lo, proc, pipe in jobs:
        try:
            found.append(lo + pipe.recv())
        except EOFError:
            raise RuntimeError(f"an inference process died (exit code {proc.exitcode})") from None
        finally:
            proc.join()
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _slice_alive(y: sp.csr_matrix, layers: list[sp.csr_matrix], bias: float, shortcut: bool, pipe: Any) -> None:
    pipe.send(infer(y, layers, bias, shortcut).alive())
    pipe.close()
