"""A worker's layers computed as the original computes them, for `--wire original`.

The original (SDS-Inf-Code's queue and object workers) holds a worker's activations as a SciPy sparse
matrix H (neurons x the batch's inputs, the worker's own neurons' rows) and, per layer:

- Z = W[layer] * H, where W[layer] (`nnp.K`) holds the rows of the worker's output neurons, each
  row's input neurons ascending, as a sorted weights file gives them;
- each source's blocks are read into one matrix, its chunks added up as they come, its explicit zeros
  dropped, and Z += W[layer] * that matrix, source after source;
- `multiply_post_process`: the bias, the ReLU and the cap applied to Z's stored values.

Every count it takes reads that matrix (stored entries, ReLU'd zeros included), and every message
takes its rows as SciPy stores them: `getrow`, `vstack`, `eliminate_zeros`, `tocoo`, in the order of
SciPy's products and sums, which is not ascending. The same operations are done here, in the same
order (sources by id, a source's chunks in the order sent), so counts and message bytes are the
original's. The answer is the same as the dense kernel's; this path is slower, and is only taken for
`--wire original`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf.model import CAP
from lambda_src.sdsinf.wire import Coo


def owned_rows(columns: sp.csc_matrix, mine: np.ndarray, neurons: int) -> sp.csr_matrix:
    """W[layer] as the original's worker holds it: N x N, row i the weights into output neuron i (for
    the neurons `mine` it computes, from `columns` = W[:, mine]), input neurons ascending."""
    sub = sp.csr_matrix(columns.T)
    sub.sort_indices()
    counts = np.zeros(neurons, dtype=np.int64)
    counts[mine] = np.diff(sub.indptr)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((sub.data, sub.indices, indptr), shape=(neurons, neurons))


@dataclass
class OriginalLayers:
    """One worker's activations for one batch, as the original holds them."""

    neurons: int
    bias: float
    h: sp.spmatrix  # neurons x batch

    @classmethod
    def start(cls, inputs: sp.csr_matrix, mine: np.ndarray, neurons: int, bias: float) -> OriginalLayers:
        """From the batch's rows of `train.K` (batch x the neurons `mine` this worker holds): the
        original's `infDataCSR[batch].transpose()`, a CSC matrix."""
        x = sp.csr_matrix(inputs)
        x.sort_indices()
        full = sp.csr_matrix((x.data.astype(np.float32), mine[x.indices], x.indptr), shape=(x.shape[0], neurons))
        return cls(neurons, bias, full.transpose())

    @property
    def batch(self) -> int:
        return int(self.h.shape[1])

    def nnz(self) -> int:
        return int(self.h.getnnz())

    def row_counts(self) -> np.ndarray:
        """Stored entries of each neuron's row (the original's `H.getnnz(axis=1)`)."""
        return np.asarray(self.h.getnnz(axis=1))

    def rows(self, ids: list[int]) -> Coo:
        """Rows `ids`, in that order, as the original's `send_row_chunker` packs them."""
        stack = sp.vstack([self.h.getrow(r) for r in ids], format="csr")
        stack.eliminate_zeros()
        coo = stack.tocoo()
        return Coo(coo.data, np.asarray(ids, dtype=np.int64)[coo.row], coo.col.astype(np.int64))

    def step(self, weights: sp.csr_matrix, received: list[list[Coo]]) -> None:
        """One layer: the own product, then each source's (its chunks summed in the order given)."""
        shape = (self.neurons, self.batch)
        z = weights @ self.h
        for chunks in received:
            block: sp.csr_matrix | None = None
            for chunk in chunks:
                part = sp.csr_matrix((chunk.values, (chunk.rows, chunk.cols)), shape=shape)
                block = part if block is None else block + part
            if block is None:
                continue
            block.eliminate_zeros()
            if block.getnnz() > 0:
                z = z + weights @ block
        z = sp.csr_matrix(z)
        # multiply_post_process: the stored values change; the pattern does not
        z.data = np.where(z.data != 0, z.data + self.bias, z.data)
        z.data = np.where(z.data < 0, 0, z.data)
        z.data = np.where(z.data > CAP, CAP, z.data)
        self.h = z

    def held(self, mine: np.ndarray) -> np.ndarray:
        """The activations of the neurons `mine`, dense (batch x mine), for what follows the layers."""
        return np.asarray(sp.csr_matrix(self.h)[mine].T.toarray(), dtype=np.float32)
