"""skydeck's own block format, the `--wire npz` option (lambda_src.sdsinf.wire): compressed npz of a
sparse block.

Received data is only ever parsed with `numpy.load(..., allow_pickle=False)`: never pickle, never eval.
"""

from __future__ import annotations

import io

import numpy as np
import scipy.sparse as sp


def encode(neuron_ids: np.ndarray, block: np.ndarray) -> bytes:
    """`block` is (batch x len(neuron_ids)) float32; zeros cost nothing."""
    m = sp.csr_matrix(block.astype(np.float32, copy=False))
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        ids=np.asarray(neuron_ids, dtype=np.int32),
        indptr=m.indptr.astype(np.int32),
        indices=m.indices.astype(np.int32),
        data=m.data,
        shape=np.asarray(m.shape, dtype=np.int64),
    )
    return buf.getvalue()


def decode(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """-> (neuron ids, dense block)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        shape = tuple(int(s) for s in z["shape"])
        m = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
        return z["ids"].astype(np.int64), m.toarray().astype(np.float32)
