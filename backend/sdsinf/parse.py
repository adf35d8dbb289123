"""A Graph Challenge directory parsed on every core, digested as it is read.

Parsing the files is most of a cold `sdsinf infer` (about 3 ms a layer file, a fifth of a second for
6,000 inputs; 120 layers take longer than the inference itself). The files are independent, so the
inputs and the layers are parted, in their order, into runs of about equal work, one forked process
each, and come back in order; each layer's edges are counted where it was read.

The processes start before scipy is imported (a tenth of a second, on one core): they read with numpy
alone and send back each file's CSR arrays, which this process wraps once scipy is in. Where the
dataset's digest is wanted (to name its parsed copy), each process hashes the files it reads, so that
the digest costs no pass of its own over 70 MB. One core, or a platform without fork, does it all here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lambda_src.sdsinf import forked
from lambda_src.sdsinf import graphchallenge as gc
from lambda_src.sdsinf.model import Network, bias_for

if TYPE_CHECKING:
    import scipy.sparse as sp

MIN_LAYERS_PER_PROCESS = 8  # below this a fork costs more than the parse it saves
MISSING = b"\0missing"  # a file's place in the digest where the dataset has none (the truth is optional)
INPUTS = 0  # the inputs' place among the files parsed; layer k is k


@dataclass
class Loaded:
    network: Network
    inputs: sp.csr_matrix
    truth: np.ndarray | None
    digest: str | None  # the files by name and content, where asked for


# a file's CSR arrays as they cross a pipe: the values (or the one value they all have), the column
# indices (in 16 bits where they fit), the row pointers and the shape
Packed = tuple[np.ndarray | np.float32, np.ndarray, np.ndarray, tuple[int, int]]
# a file as a parsing process sends it: packed, or its triples where scipy must sort them; and its sha1,
# where hashed
Parsed = tuple[gc.Triples | Packed, bytes | None]


def load_all(
    root: Path, neurons: int, depth: int, processes: int | None = None, digest_of: str | None = None
) -> Loaded:
    """The dataset; with `digest_of` (what else names it: a format, the shape), also the sha1 of that and
    of every file read, by name and content. A bad file raises gc.DataError naming it, as the one-process
    reader does."""
    gc.check_depth(root, neurons, depth)
    hashing = digest_of is not None
    files = [INPUTS, *range(1, depth + 1)]
    n = min(processes if processes is not None else (os.cpu_count() or 1), depth // MIN_LAYERS_PER_PROCESS)
    if n <= 1 or not forked.can_fork():
        parsed = _parse(root, neurons, files, hashing)
        truth, truth_sha = _truth(root, neurons, depth, hashing)
    else:
        # the inputs take a third longer a byte than a layer (a shorter line, more of them)
        cost = [_size(_path(root, neurons, f)) * (4 if f == INPUTS else 3) for f in files]
        runs = _runs(files, cost, n)
        started = [forked.start("parsing", _parse, root, neurons, run, hashing) for run in runs]
        try:
            truth, truth_sha = _truth(root, neurons, depth, hashing)
            import scipy.sparse  # noqa: F401  # here, while the files are read, and not on the way to reading them
        except BaseException:
            for f in started:
                f.stop()
            raise
        parsed = [one for run in forked.results(started) for one in run]
    y = gc.matrix(_unpacked(parsed[INPUTS][0]))
    layers = [_layer(root, neurons, k, parsed[k][0]) for k in range(1, depth + 1)]
    digest = None
    if digest_of is not None:
        named = [(_path(root, neurons, f), parsed[f][1]) for f in files]
        digest = _combined(digest_of, [*named[1:], named[0], (gc.truth_path(root, neurons, depth), truth_sha)])
    return Loaded(Network(neurons, layers, bias_for(neurons)), y, truth, digest)


def _layer(root: Path, neurons: int, k: int, sent: gc.Triples | Packed) -> sp.csr_matrix:
    if isinstance(sent, gc.Triples):  # scipy sorts and sums them: only then are its edges counted
        return gc.checked_layer(root, neurons, k, sent)
    return gc.matrix(_unpacked(sent))  # counted by the process that read it


def _path(root: Path, neurons: int, file: int) -> Path:
    return gc.images_path(root, neurons) if file == INPUTS else gc.layer_path(root, neurons, file)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # read (and refused, by name) by the process that gets it


def _runs(files: list[int], sizes: list[int], n: int) -> list[list[int]]:
    """The files in their order, cut into at most n runs of about equal size (bytes, weighted by their
    cost), none empty: each run takes files while at least half of the next one fits its share of what
    is left."""
    runs: list[list[int]] = []
    left, i = sum(sizes), 0
    while i < len(files):
        share = left / (n - len(runs))
        run: list[int] = []
        got = 0
        while i < len(files) and (not run or len(runs) == n - 1 or got + sizes[i] / 2 <= share):
            run.append(files[i])
            got += sizes[i]
            i += 1
        runs.append(run)
        left -= got
    return runs


def _parse(root: Path, neurons: int, files: list[int], hashing: bool) -> list[Parsed]:
    out: list[Parsed] = []
    for file in files:
        path = _path(root, neurons, file)
        sha = _file_sha1(path) if hashing else None
        triples = gc.read_inputs(root, neurons) if file == INPUTS else gc.read_triples(path, (neurons, neurons))
        compact = triples.compact()
        if file != INPUTS and not isinstance(compact, gc.Triples):
            gc.check_edges(path, compact[0][1], neurons)  # here, on this core (triples are checked once built)
        out.append((_packed(compact), sha))
    return out


def _packed(compact: gc.Compact) -> gc.Triples | Packed:
    """A file's CSR arrays made small for the pipe: 45 MB of them took a tenth of a second to cross it.
    Every Graph Challenge file has one value throughout (1/16, or 1), sent once; a network of up to 65,536
    neurons numbers its columns in 16 bits. Unpacked, the arrays are the same to the bit."""
    if isinstance(compact, gc.Triples):
        return compact
    (data, indices, indptr), shape = compact
    bits = data.view(np.uint32)
    one = data[0] if data.size and bool(np.all(bits == bits[0])) else None
    narrow = indices.astype(np.uint16) if shape[1] <= 1 << 16 else indices
    return (data if one is None else one, narrow, indptr, shape)


def _unpacked(sent: gc.Triples | Packed) -> gc.Compact:
    if isinstance(sent, gc.Triples):
        return sent
    values, indices, indptr, shape = sent
    data = values if isinstance(values, np.ndarray) else np.full(indices.size, values, dtype=np.float32)
    return (data, indices.astype(np.int32), indptr), shape


def _truth(root: Path, neurons: int, depth: int, hashing: bool) -> tuple[np.ndarray | None, bytes | None]:
    path = gc.truth_path(root, neurons, depth)
    return gc.load_truth(root, neurons, depth), _file_sha1(path) if hashing else None


def _file_sha1(path: Path) -> bytes:
    # sha1 for speed (twice blake2b's here); this names a cache entry, it guards nothing
    try:
        return hashlib.sha1(path.read_bytes(), usedforsecurity=False).digest()
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        raise gc.DataError(f"{path}: {exc.strerror}") from None


def _combined(header: str, files: list[tuple[Path, bytes | None]]) -> str:
    """What the dataset is: a changed byte in any file, or a file gone, is a new digest."""
    digest = hashlib.sha1(header.encode(), usedforsecurity=False)
    for path, sha in files:
        digest.update(path.name.encode())
        digest.update(sha or MISSING)
    return digest.hexdigest()
