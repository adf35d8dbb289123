"""The one sparse kernel every variant uses, and the plain reference loop it is checked against.

Fast path: activations are kept as a dense float32 block of the rows still alive (a row that is
all zeros stays zero forever, so it is dropped and remembered), neuron-major, multiplied by the
layer's sparse matrix, a cache-sized block of rows at a time through every layer. The reference
is the Graph Challenge's loop on scipy sparse matrices, one layer at a time.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf import forked
from lambda_src.sdsinf.model import CAP

MIN_ROWS_PER_PROCESS = 500  # below this a fork costs more than the slice's arithmetic
BLOCK_ROWS = 512  # 1024 neurons x 512 rows x 4 bytes = 2 MiB: stays in a core's L2 across layers


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
    nonzero = np.any(y != 0, axis=1) if isinstance(y, np.ndarray) else np.diff(y.tocsr().indptr) > 0
    alive = np.flatnonzero(nonzero)
    ids = alive if row_ids is None else row_ids[alive]
    return np.sort(ids) + 1


class LiveRows:
    """Activations of the rows still being computed: `ids` (0-based input ids) and a dense block `yt`
    held neuron-major (neurons x live rows, C order), so that a layer is one sparse-times-dense product
    W^T . Y^T with no transposing copies, and a dead row is a column dropped.

    `settled` holds ids of rows proven to stay at the cap in every neuron to the last layer (see
    `saturation_is_stable`); they are alive in the answer without further arithmetic.
    """

    def __init__(self, y: sp.csr_matrix | np.ndarray, ids: np.ndarray | None = None) -> None:
        dense = np.asarray(y) if isinstance(y, np.ndarray) else y.toarray()
        ids = np.arange(dense.shape[0]) if ids is None else np.asarray(ids)
        keep = np.any(dense != 0, axis=1)
        self.yt = np.ascontiguousarray(dense[keep].T, dtype=np.float32)
        self.ids = ids[keep]
        self.settled = np.empty(0, dtype=self.ids.dtype)
        self.width = dense.shape[1]

    @property
    def y(self) -> np.ndarray:
        """The live rows' activations, input-major (a view: live rows x neurons)."""
        return self.yt.T

    def step(self, wt: sp.csr_matrix, bias: float) -> None:
        """One layer, given W transposed (CSR). Only nonzeros of Y.W get the bias: a zero stays zero."""
        if not self.ids.size:
            return
        z = np.asarray(wt @ self.yt, dtype=np.float32)  # scipy's CSR-times-dense, row by row of W^T
        if bias <= 0:
            # a zero plus a bias <= 0 clips back to zero, so the bias can go on every entry: one pass
            z += np.float32(bias)
        else:
            z += np.float32(bias) * (z != 0)
        np.clip(z, 0.0, CAP, out=z)
        keep = z.max(axis=0) > 0  # everything is >= 0 after the clip: alive = any entry above zero
        if not keep.all():
            z = np.ascontiguousarray(z[:, keep])
            self.ids = self.ids[keep]
        self.yt = z

    def settle_saturated(self) -> None:
        """Retire rows at the cap in every neuron (only valid where `saturation_is_stable` says so)."""
        if not self.ids.size:
            return
        full = self.yt.min(axis=0) == CAP
        if full.any():
            self.settled = np.concatenate([self.settled, self.ids[full]])
            self.ids = self.ids[~full]
            self.yt = np.ascontiguousarray(self.yt[:, ~full])

    def alive(self) -> np.ndarray:
        """0-based ids of every row alive now, computed or settled, sorted."""
        return np.sort(np.concatenate([self.ids, self.settled]))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The activations of `ids` (all alive), settled rows included."""
        where = {int(i): k for k, i in enumerate(self.ids)}
        out = np.full((len(ids), self.width), CAP, dtype=np.float32)
        for n, i in enumerate(ids):
            if int(i) in where:
                out[n] = self.yt[:, where[int(i)]]
        return out

    @classmethod
    def joined(cls, parts: list[LiveRows], width: int) -> LiveRows:
        """Blocks of rows computed apart, as one."""
        whole = cls(np.zeros((0, width), dtype=np.float32))
        if parts:
            whole.ids = np.concatenate([p.ids for p in parts])
            whole.settled = np.concatenate([p.settled for p in parts])
            whole.yt = np.ascontiguousarray(np.concatenate([p.yt for p in parts], axis=1))
        return whole


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
    """The live-row kernel; `shortcut` retires rows at the cap where that is exact (see settle_points).

    Rows never interact, so they go through the whole network BLOCK_ROWS at a time: a block's
    activations stay in the core's cache across the layers instead of streaming the whole batch
    through memory once a layer (2x on these machines, measured by benchmarks/sdsinf_bench.py)."""
    wts = transposed(layers)
    return _infer_transposed(y, wts, settle_points(wts, bias), bias, shortcut)


def _infer_transposed(
    y: sp.csr_matrix, wts: list[sp.csr_matrix], settle: list[bool], bias: float, shortcut: bool
) -> LiveRows:
    y = sp.csr_matrix(y)
    parts = []
    for lo in range(0, y.shape[0], BLOCK_ROWS):
        live = LiveRows(y[lo : lo + BLOCK_ROWS], np.arange(lo, min(lo + BLOCK_ROWS, y.shape[0])))
        for wt, settle_here in zip(wts, settle, strict=True):
            if not live.ids.size:
                break
            live.step(wt, bias)
            if settle_here and shortcut:
                live.settle_saturated()
        parts.append(live)
    return LiveRows.joined(parts, y.shape[1])


def infer_alive(
    y: sp.csr_matrix, layers: list[sp.csr_matrix], bias: float, processes: int | None = None, shortcut: bool = True
) -> np.ndarray:
    """The inputs still alive after the last layer (0-based), on every core: the inputs are split into
    contiguous slices, one forked process each (the network is shared by the fork, not copied), and
    the slices' answers joined. Rows never interact, so the answer is the single-process one."""
    n = processes if processes is not None else (os.cpu_count() or 1)
    rows = y.shape[0]
    if n <= 1 or rows < 2 * MIN_ROWS_PER_PROCESS or not forked.can_fork():
        return infer(y, layers, bias, shortcut).alive()
    n = min(n, rows // MIN_ROWS_PER_PROCESS)
    bounds = np.linspace(0, rows, n + 1).astype(np.int64)
    slices = list(zip(bounds[:-1], bounds[1:], strict=True))
    wts = transposed(layers)  # once, here: each process would make its own copy of the same
    settle = settle_points(wts, bias)
    started = [forked.start("inference", _slice_alive, y[lo:hi], wts, settle, bias, shortcut) for lo, hi in slices]
    found = [lo + alive for (lo, _), alive in zip(slices, forked.results(started), strict=True)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _slice_alive(
    y: sp.csr_matrix, wts: list[sp.csr_matrix], settle: list[bool], bias: float, shortcut: bool
) -> np.ndarray:
    return _infer_transposed(y, wts, settle, bias, shortcut).alive()
