"""The Sparse DNN Graph Challenge network, and a generator for networks and inputs like it.

A network has N neurons a layer and L layers; layer l is a sparse N x N matrix W_l (row = input
neuron, column = output neuron) with 32 connections into every neuron, and one bias for all
neurons (-0.3 / -0.35 / -0.4 / -0.45 for 1024 / 4096 / 16384 / 65536 neurons). Inference:
Y <- min(max(Y . W_l + b, 0), 32) on the nonzeros, layer after layer; the answer is the set of
inputs (1-based) whose last row has any nonzero.

The generator builds RadiX-Net style layers: each layer connects neuron j to the 32 inputs
(p_l(j) + k * N/32) mod N, k = 0..31, for a permutation p_l drawn per layer, so every neuron has
fan-in and fan-out 32, and all weights are 1/16 as in the published networks. Everything is
deterministic by seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where a matrix is built: reading the Graph Challenge's files needs numpy alone
    import scipy.sparse as sp

FAN_IN = 32
WEIGHT = 1.0 / 16.0
CAP = 32.0
BIASES = {1024: -0.3, 4096: -0.35, 16384: -0.4, 65536: -0.45}


def bias_for(neurons: int) -> float:
    if neurons in BIASES:
        return BIASES[neurons]
    raise ValueError(f"no published bias for {neurons} neurons; use one of {', '.join(map(str, BIASES))}")


@dataclass
class Network:
    neurons: int
    layers: list[sp.csr_matrix]  # each N x N, float32
    bias: float

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def edges(self) -> int:
        return sum(int(w.nnz) for w in self.layers)


def radixnet(neurons: int, depth: int, seed: int = 0, bias: float | None = None) -> Network:
    if neurons % FAN_IN:
        raise ValueError(f"neurons must be a multiple of {FAN_IN}, not {neurons}")
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    stride = neurons // FAN_IN
    cols = np.repeat(np.arange(neurons, dtype=np.int64), FAN_IN)
    offsets = np.tile(np.arange(FAN_IN, dtype=np.int64) * stride, neurons)
    layers = []
    for _ in range(depth):
        perm = rng.permutation(neurons)
        rows = (perm[cols] + offsets) % neurons
        data = np.full(rows.size, WEIGHT, dtype=np.float32)
        layers.append(sp.csr_matrix((data, (rows, cols)), shape=(neurons, neurons), dtype=np.float32))
    return Network(neurons, layers, bias_for(neurons) if bias is None else bias)


def generate_inputs(
    neurons: int, count: int, seed: int = 1, density: tuple[float, float] | None = None
) -> sp.csr_matrix:
    """Binary sparse inputs (count x neurons), each with its own density, so some die and some live.

    The default densities straddle the point where a row either dies or saturates, which moves
    with the bias: (0.2, 0.35) at 1024 neurons (bias -0.3), scaled by |bias| / 0.3 elsewhere."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    scale = abs(BIASES.get(neurons, -0.3)) / 0.3
    lo, hi = density if density is not None else (0.2 * scale, min(0.35 * scale, 0.9))
    per_row = np.maximum(1, (rng.uniform(lo, hi, size=count) * neurons).astype(np.int64))
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    indices = np.concatenate([np.sort(rng.choice(neurons, size=k, replace=False)) for k in per_row])
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(count, neurons))
