"""Models and inputs in S3 as compressed npz (the Graph Challenge TSVs are converted on upload)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf.model import Network


def pack_network(net: Network) -> bytes:
    arrays: dict[str, Any] = {
        "neurons": np.int64(net.neurons),
        "bias": np.float64(net.bias),
        "depth": np.int64(net.depth),
    }
    for k, w in enumerate(net.layers):
        w = sp.csr_matrix(w)
        arrays[f"l{k}_indptr"] = w.indptr
        arrays[f"l{k}_indices"] = w.indices
        arrays[f"l{k}_data"] = w.data
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def unpack_network(blob: bytes) -> Network:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        n = int(z["neurons"])
        layers = [
            sp.csr_matrix((z[f"l{k}_data"], z[f"l{k}_indices"], z[f"l{k}_indptr"]), shape=(n, n))
            for k in range(int(z["depth"]))
        ]
        return Network(n, layers, float(z["bias"]))


def pack_matrix(m: sp.csr_matrix) -> bytes:
    m = sp.csr_matrix(m)
    buf = io.BytesIO()
    np.savez_compressed(buf, indptr=m.indptr, indices=m.indices, data=m.data, shape=np.asarray(m.shape))
    return buf.getvalue()


def unpack_matrix(blob: bytes) -> sp.csr_matrix:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
