"""SDS-Inf on this machine: generate Graph Challenge data and run inference on it.

The distributed variants (Queue, Object, Serial on Lambda, Server on EC2) use the same kernel from
`lambda_src.sdsinf`; this module is the local, single-process path and the data tooling.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backend.core.errors import ConfigError
from backend.sdsinf.parse import load_all
from lambda_src.sdsinf import forked
from lambda_src.sdsinf import graphchallenge as gc
from lambda_src.sdsinf.model import BIASES, Network, generate_inputs, radixnet

if TYPE_CHECKING:
    import scipy.sparse as sp

# scipy (and the kernel, which needs it) are imported where they are used: a cold `sdsinf infer` starts
# parsing on every core first, and imports scipy while the files are being read

CACHE_FORMAT = 4  # a parsed dataset's layout in the cache, and how its digest is made; a new one is a new key


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
    from lambda_src.sdsinf.kernel import categories, reference

    net = radixnet(neurons, layers, seed=seed)
    y = generate_inputs(neurons, inputs, seed=seed + 1, density=density)
    truth = categories(reference(y, net.layers, net.bias))
    gc.write_dataset(out, net, y, truth)
    return {"out": str(out), "neurons": neurons, "layers": layers, "inputs": inputs, "categories": int(truth.size)}


Dataset = tuple[Network, "sp.csr_matrix", np.ndarray | None]


def load_dataset(data: Path, neurons: int, layers: int, cache: Path | None = None) -> Dataset:
    """(network, inputs, truth or None) from a Graph Challenge directory; bad files -> ConfigError.

    With `cache`, the parsed dataset is kept there as arrays under a digest of the files' contents, so
    the next load of the same files (a second `infer`, an `upload` after it) skips the TSV parse."""
    with dataset(data, neurons, layers, cache) as loaded:
        return loaded


@contextmanager
def dataset(data: Path, neurons: int, layers: int, cache: Path | None = None) -> Iterator[Dataset]:
    """As load_dataset, for a block that works on the dataset while its parsed copy is written: a forked
    process writes it (a twentieth of a second of a cold `infer`), and the block's end waits for it."""
    _check_shape(neurons, layers)
    parsed_here = False  # not read from the cache
    try:
        stamps = _stamps(data, neurons, layers) if cache is not None else []
        key = _remembered_digest(data, neurons, layers, cache, stamps) if cache is not None else None
        if key is not None and cache is not None and _entry(cache, key).is_dir():
            parsed = _read_cached(_entry(cache, key))
        else:  # on every core, the files digested as they are read
            loaded = load_all(data, neurons, layers, digest_of=_digest_header(neurons, layers) if cache else None)
            parsed, key = (loaded.network, loaded.inputs, loaded.truth), loaded.digest
            parsed_here = True
    except gc.DataError as exc:
        raise ConfigError(str(exc)) from None
    writer = None
    if parsed_here and key is not None and cache is not None:
        _remember_digest(data, neurons, layers, cache, stamps, key)
        kept = _entry(cache, key)
        if not kept.is_dir():  # the same files elsewhere (a copied directory) have it already
            cache.mkdir(parents=True, exist_ok=True)
            if forked.can_fork():
                writer = forked.start("cache-writing", _keep, kept, *parsed)
            else:
                _keep(kept, *parsed)
    failed = False
    try:
        yield parsed
    except BaseException:
        failed = True
        raise
    finally:
        if writer is not None:
            try:
                writer.result()
            except Exception:
                if not failed:  # the block's own error is the one to tell
                    raise


def _entry(cache: Path, digest: str) -> Path:
    return cache / f"{digest}.parsed"


def _keep(kept: Path, net: Network, y: sp.csr_matrix, truth: np.ndarray | None) -> None:
    tmp = kept.with_name(f"{kept.name}.{os.getpid()}.tmp")  # two commands at once each write their own
    try:
        _write_cached(tmp, net, y, truth)
        tmp.rename(kept)  # whole or not at all: a killed write never serves half a dataset
    except OSError:
        if not kept.is_dir():  # another command's copy got there first: as good as ours
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_cached(folder: Path, net: Network, y: sp.csr_matrix, truth: np.ndarray | None) -> None:
    """The parsed dataset as plain arrays, one .npy file each: writing them is a copy to the page cache,
    and so is reading them back (an npz's checksums took half the time of the write, and zlib would cost
    more to undo than the TSV digest that finds it)."""
    import scipy.sparse as sp

    arrays: dict[str, np.ndarray] = {
        "neurons": np.asarray(net.neurons, np.int64), "bias": np.asarray(net.bias, np.float64),
        "depth": np.asarray(net.depth, np.int64),
        "y_indptr": y.indptr, "y_indices": y.indices, "y_data": y.data, "y_shape": np.asarray(y.shape),
        "truth": truth if truth is not None else np.zeros(0, dtype=np.int64),
        "has_truth": np.asarray(truth is not None),
    }  # fmt: skip
    csr = [sp.csr_matrix(w) for w in net.layers]
    # every layer in three arrays (few files: each one read costs an open)
    arrays["w_indptr"] = np.stack([w.indptr.astype(np.int64) for w in csr])
    arrays["w_indices"] = np.concatenate([w.indices for w in csr])
    arrays["w_data"] = np.concatenate([w.data.astype(np.float32) for w in csr])
    folder.mkdir(parents=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=False)


def _read_cached(folder: Path) -> tuple[Network, sp.csr_matrix, np.ndarray | None]:
    import scipy.sparse as sp

    def z(name: str) -> np.ndarray:
        return np.load(folder / f"{name}.npy", allow_pickle=False)

    n = int(z("neurons"))
    indptr, indices, data = z("w_indptr"), z("w_indices"), z("w_data")
    starts = np.concatenate([[0], np.cumsum(indptr[:, -1])])
    layers = [
        sp.csr_matrix((data[a:b], indices[a:b], indptr[k]), shape=(n, n))
        for k, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True))
    ]
    y = sp.csr_matrix((z("y_data"), z("y_indices"), z("y_indptr")), shape=tuple(z("y_shape")))
    truth = z("truth") if bool(z("has_truth")) else None
    return Network(n, layers, float(z("bias"))), y, truth


def _stamps(data: Path, neurons: int, layers: int) -> list[list[object]]:
    """Each file's name, size and change time (ns), taken before the files are read."""
    paths = _dataset_paths(data, neurons, layers)
    return [[p.name, *((st.st_size, st.st_mtime_ns) if (st := _stat(p)) else (-1, -1))] for p in paths]


def _memo_path(data: Path, cache: Path) -> Path:
    return cache / "digests" / (hashlib.sha1(str(data.resolve()).encode(), usedforsecurity=False).hexdigest() + ".json")


def _remembered_digest(data: Path, neurons: int, layers: int, cache: Path, stamps: list[list[object]]) -> str | None:
    """The dataset's content digest, remembered beside the cache with each file's size and change time:
    while none of them moved, the files are not read again to find it (as git's index does)."""
    import json

    try:
        known = json.loads(_memo_path(data, cache).read_text())
        if known["stamps"] == stamps and known["shape"] == [CACHE_FORMAT, neurons, layers]:
            return str(known["digest"])
    except (OSError, ValueError, KeyError):
        pass
    return None


def _remember_digest(
    data: Path, neurons: int, layers: int, cache: Path, stamps: list[list[object]], digest: str
) -> None:
    import json

    memo = _memo_path(data, cache)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(".tmp")
    tmp.write_text(json.dumps({"stamps": stamps, "shape": [CACHE_FORMAT, neurons, layers], "digest": digest}))
    tmp.replace(memo)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _dataset_paths(data: Path, neurons: int, layers: int) -> list[Path]:
    paths = [gc.layer_path(data, neurons, k) for k in range(1, layers + 1)]
    return paths + [gc.images_path(data, neurons), gc.truth_path(data, neurons, layers)]


def _digest_header(neurons: int, layers: int) -> str:
    return f"{CACHE_FORMAT}/{neurons}/{layers}"


def infer_dir(data: Path, neurons: int, layers: int, cache: Path | None = None) -> InferResult:
    with dataset(data, neurons, layers, cache) as (net, y, truth):
        from lambda_src.sdsinf.kernel import infer_alive  # scipy: imported while the files were read

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
