"""SDS-Inf on this machine: generate Graph Challenge data and run inference on it.

The distributed variants (Queue, Object, Serial on Lambda, Server on EC2) use the same kernel from
`lambda_src.sdsinf`; this module is the local, single-process path and the data tooling.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backend.core.errors import ConfigError
from backend.sdsinf.parse import load_all
from lambda_src.sdsinf import graphchallenge as gc
from lambda_src.sdsinf.kernel import categories, infer_alive, reference
from lambda_src.sdsinf.model import BIASES, Network, generate_inputs, radixnet

CACHE_FORMAT = 3  # a parsed dataset's layout in the cache; a new layout is a new key


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


def generate(
    out: Path, neurons: int, layers: int, inputs: int, seed: int = 0, density: tuple[float, float] | None = None
) -> dict[str, object]:
    """A RadiX-Net style network and inputs in the Graph Challenge layout, with the truth file; `density`
    is the range of the inputs' nonzero fractions (lambda_src.sdsinf.model.generate_inputs)."""
    _check_shape(neurons, layers)
    if inputs < 1:
        raise ConfigError(f"--inputs must be at least 1, not {inputs}")
    net = radixnet(neurons, layers, seed=seed)
    y = generate_inputs(neurons, inputs, seed=seed + 1, density=density)
    truth = categories(reference(y, net.layers, net.bias))
    gc.write_dataset(out, net, y, truth)
    return {"out": str(out), "neurons": neurons, "layers": layers, "inputs": inputs, "categories": int(truth.size)}


def load_dataset(
    data: Path, neurons: int, layers: int, cache: Path | None = None
) -> tuple[Network, sp.csr_matrix, np.ndarray | None]:
    """(network, inputs, truth or None) from a Graph Challenge directory; bad files -> ConfigError.

    With `cache`, the parsed dataset is kept there as npz under a digest of the files' contents, so
    the next load of the same files (a second `infer`, an `upload` after it) skips the TSV parse."""
    _check_shape(neurons, layers)
    try:
        key = _known_digest(data, neurons, layers, cache) if cache is not None else None
        if key is not None and cache is not None and (cache / f"{key}.npz").is_file():
            return _read_cached(cache / f"{key}.npz")
        net, y, truth = load_all(data, neurons, layers)  # on every core
    except gc.DataError as exc:
        raise ConfigError(str(exc)) from None
    if key is not None and cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"{key}.tmp.npz"
        _write_cached(tmp, net, y, truth)
        tmp.replace(cache / f"{key}.npz")  # whole or not at all: a killed write never serves half a dataset
    return net, y, truth


def _write_cached(path: Path, net: Network, y: sp.csr_matrix, truth: np.ndarray | None) -> None:
    """The parsed dataset as plain arrays, uncompressed: reading it back is a copy from the page cache
    (zlib would cost more to undo than the TSV digest that finds it)."""
    arrays: dict[str, np.ndarray] = {
        "neurons": np.asarray(net.neurons, np.int64), "bias": np.asarray(net.bias, np.float64),
        "depth": np.asarray(net.depth, np.int64),
        "y_indptr": y.indptr, "y_indices": y.indices, "y_data": y.data, "y_shape": np.asarray(y.shape),
        "truth": truth if truth is not None else np.zeros(0, dtype=np.int64),
        "has_truth": np.asarray(truth is not None),
    }  # fmt: skip
    csr = [sp.csr_matrix(w) for w in net.layers]
    # every layer in three arrays (the zip holds few members: each one read costs a lookup)
    arrays["w_indptr"] = np.stack([w.indptr.astype(np.int64) for w in csr])
    arrays["w_indices"] = np.concatenate([w.indices for w in csr])
    arrays["w_data"] = np.concatenate([w.data.astype(np.float32) for w in csr])
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **kwds as its allow_pickle


def _read_cached(path: Path) -> tuple[Network, sp.csr_matrix, np.ndarray | None]:
    with np.load(path, allow_pickle=False) as z:
        n = int(z["neurons"])
        indptr, indices, data = z["w_indptr"], z["w_indices"], z["w_data"]
        starts = np.concatenate([[0], np.cumsum(indptr[:, -1])])
        layers = [
            sp.csr_matrix((data[a:b], indices[a:b], indptr[k]), shape=(n, n))
            for k, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True))
        ]
        y = sp.csr_matrix((z["y_data"], z["y_indices"], z["y_indptr"]), shape=tuple(z["y_shape"]))
        truth = z["truth"] if bool(z["has_truth"]) else None
        return Network(n, layers, float(z["bias"])), y, truth


def _known_digest(data: Path, neurons: int, layers: int, cache: Path) -> str:
    """The dataset's content digest, remembered beside the cache with each file's size and change time
    (ns): while none of them moved, the files are not read again to find it (as git's index does)."""
    import json

    paths = _dataset_paths(data, neurons, layers)
    stamps = [[p.name, *((st.st_size, st.st_mtime_ns) if (st := _stat(p)) else (-1, -1))] for p in paths]
    memo = cache / "digests" / (hashlib.sha1(str(data.resolve()).encode(), usedforsecurity=False).hexdigest() + ".json")
    try:
        known = json.loads(memo.read_text())
        if known["stamps"] == stamps and known["shape"] == [CACHE_FORMAT, neurons, layers]:
            return str(known["digest"])
    except (OSError, ValueError, KeyError):
        pass
    digest = _digest(data, neurons, layers)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stamps": stamps, "shape": [CACHE_FORMAT, neurons, layers], "digest": digest}))
    tmp.replace(memo)
    return digest


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _dataset_paths(data: Path, neurons: int, layers: int) -> list[Path]:
    paths = [gc.layer_path(data, neurons, k) for k in range(1, layers + 1)]
    return paths + [gc.images_path(data, neurons), gc.truth_path(data, neurons, layers)]


def _digest(data: Path, neurons: int, layers: int) -> str:
    """What the dataset is: every file it reads, by name and content (a changed byte is a new key)."""
    # sha1 for speed (twice blake2b's here); this names a cache entry, it guards nothing
    digest = hashlib.sha1(f"{CACHE_FORMAT}/{neurons}/{layers}".encode(), usedforsecurity=False)
    for path in _dataset_paths(data, neurons, layers):
        digest.update(path.name.encode())
        try:
            digest.update(path.read_bytes())
        except FileNotFoundError:
            digest.update(b"\0missing")
        except OSError as exc:
            raise gc.DataError(f"{path}: {exc.strerror}") from None
    return digest.hexdigest()


def infer_dir(data: Path, neurons: int, layers: int, cache: Path | None = None) -> InferResult:
    net, y, truth = load_dataset(data, neurons, layers, cache)
    started = time.perf_counter()
    found = infer_alive(y, net.layers, net.bias) + 1  # on every core
    seconds = time.perf_counter() - started
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
