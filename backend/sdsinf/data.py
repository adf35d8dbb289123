"""SDS-Inf on this machine: generate Graph Challenge data and run inference on it.

The distributed variants (Queue, Object, Serial on Lambda, Server on EC2) use the same kernel from
`lambda_src.sdsinf`; this module is the local, single-process path and the data tooling.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backend.core.errors import ConfigError
from lambda_src.sdsinf import graphchallenge as gc
from lambda_src.sdsinf.kernel import categories, infer, reference
from lambda_src.sdsinf.model import BIASES, Network, generate_inputs, radixnet


@dataclass(frozen=True)
class InferResult:
    neurons: int
    layers: int
    inputs: int
    categories: list[int]
    seconds: float
    edges_per_s: float
    truth_checked: bool
    matches_truth: bool | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _check_shape(neurons: int, layers: int) -> None:
    if neurons not in BIASES:
        raise ConfigError(f"--neurons must be one of {', '.join(map(str, BIASES))}, not {neurons}")
    if not 1 <= layers <= 1920:
        raise ConfigError(f"--layers must be between 1 and 1920, not {layers}")


def generate(out: Path, neurons: int, layers: int, inputs: int, seed: int = 0) -> dict[str, object]:
    """A RadiX-Net style network and inputs in the Graph Challenge layout, with the truth file."""
    _check_shape(neurons, layers)
    if inputs < 1:
        raise ConfigError(f"--inputs must be at least 1, not {inputs}")
    net = radixnet(neurons, layers, seed=seed)
    y = generate_inputs(neurons, inputs, seed=seed + 1)
    truth = categories(reference(y, net.layers, net.bias))
    gc.write_dataset(out, net, y, truth)
    return {"out": str(out), "neurons": neurons, "layers": layers, "inputs": inputs, "categories": int(truth.size)}


def load_dataset(data: Path, neurons: int, layers: int) -> tuple[Network, sp.csr_matrix, np.ndarray | None]:
    """(network, inputs, truth or None) from a Graph Challenge directory; bad files -> ConfigError."""
    _check_shape(neurons, layers)
    try:
        return (
            gc.load_network(data, neurons, layers),
            gc.load_inputs(data, neurons),
            gc.load_truth(data, neurons, layers),
        )
    except gc.DataError as exc:
        raise ConfigError(str(exc)) from None


def infer_dir(data: Path, neurons: int, layers: int) -> InferResult:
    net, y, truth = load_dataset(data, neurons, layers)
    started = time.perf_counter()
    live = infer(y, net.layers, net.bias)
    seconds = time.perf_counter() - started
    found = live.alive() + 1
    return InferResult(
        neurons=neurons,
        layers=layers,
        inputs=int(y.shape[0]),
        categories=[int(i) for i in found],
        seconds=round(seconds, 4),
        edges_per_s=float(y.shape[0]) * net.edges / max(seconds, 1e-9),
        truth_checked=truth is not None,
        matches_truth=None if truth is None else bool(np.array_equal(found, truth)),
    )


def partition_report(data: Path, neurons: int, layers: int, workers: int) -> dict[str, object]:
    """Rows and bytes each partition sends between workers, per layer, for this network and inputs.

    Bytes count the nonzero activations in the rows sent (value + index, 8 bytes each), from the
    activations the inputs really produce layer by layer."""
    from lambda_src.sdsinf.partition import PARTITIONS, make_partition, plans

    net, y, _ = load_dataset(data, neurons, layers)
    if not 1 <= workers <= neurons:
        raise ConfigError(f"--workers must be between 1 and {neurons}, not {workers}")
    nnz_per_layer = []  # nonzeros of each input neuron's activation column, per layer
    act = y.astype(np.float32).tocsr()
    for w in net.layers:
        nnz_per_layer.append(np.diff(act.tocsc().indptr))
        z = (act @ w).tocsr()
        z.data = np.clip(z.data + net.bias, 0.0, 32.0)
        z.eliminate_zeros()
        act = z
    report: dict[str, object] = {"neurons": neurons, "layers": layers, "workers": workers, "inputs": int(y.shape[0])}
    for name in PARTITIONS:
        layer_plans = plans(net.layers, make_partition(name, net.layers, workers))
        rows = [p.rows_sent for p in layer_plans]
        sent_bytes = [
            int(sum(int(nnz_per_layer[i][r].sum()) for r in p.sends.values()) * 8) for i, p in enumerate(layer_plans)
        ]
        report[name] = {
            "rows_per_layer": rows,
            "bytes_per_layer": sent_bytes,
            "rows": sum(rows),
            "bytes": sum(sent_bytes),
        }
    return report
