"""Read and write the Sparse DNN Graph Challenge's files.

    neuron{N}/n{N}-l{k}.tsv          layer k (1-based): "row<TAB>col<TAB>value", 1-based
    sparse-images-{N}.tsv            inputs: "image<TAB>neuron<TAB>value", 1-based
    neuron{N}-l{L}-categories.tsv    the truth: one 1-based image id a line

Malformed input is refused with the file and the line named.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lambda_src.sdsinf.model import FAN_IN, Network, bias_for

if TYPE_CHECKING:
    import scipy.sparse as sp

# scipy is imported where a matrix is built, not here: reading a file's triples needs numpy alone, so a
# command can start its parsing processes before it pays the tenth of a second scipy takes to import

MAX_INDEX = 2**31 - 1  # a sparse matrix's 32-bit index: no Graph Challenge network comes near it
_TRIPLE = np.dtype([("row", np.int64), ("col", np.int64), ("value", np.float64)])


CsrParts = tuple[np.ndarray, np.ndarray, np.ndarray]  # (data, indices, indptr), as scipy's csr_matrix takes them


class DataError(ValueError):
    """A Graph Challenge file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Triples:
    """A file's entries, 0-based, in the file's order."""

    rows: np.ndarray  # int64
    cols: np.ndarray  # int64
    values: np.ndarray  # float32
    shape: tuple[int, int]

    def csr_parts(self) -> CsrParts | None:
        """(data, indices, indptr) of the CSR matrix scipy builds from these triples, made with numpy
        alone where the file lists its entries row by row, columns ascending, none twice (as every Graph
        Challenge file does); None otherwise, for scipy to sort and sum."""
        key = self.rows * self.shape[1] + self.cols
        if key.size > 1 and not bool(np.all(key[1:] > key[:-1])):
            return None
        indptr = np.zeros(self.shape[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(self.rows, minlength=self.shape[0]), out=indptr[1:])
        return self.values, self.cols.astype(np.int32), indptr

    def compact(self) -> Compact:
        """Its CSR arrays and shape where numpy alone makes them (a third of the bytes to send on), else
        itself."""
        parts = self.csr_parts()
        return self if parts is None else (parts, self.shape)

    def to_csr(self) -> sp.csr_matrix:
        import scipy.sparse as sp

        parts = self.csr_parts()
        if parts is not None:
            return sp.csr_matrix(parts, shape=self.shape)
        return sp.csr_matrix((self.values, (self.rows, self.cols)), shape=self.shape, dtype=np.float32)


# a file's triples as sent between processes: its CSR arrays and shape where numpy made them, else itself
Compact = Triples | tuple[CsrParts, tuple[int, int]]


def read_triples(path: Path, shape: tuple[int, int] | None) -> Triples:
    """The file's triples: parsed in one vectorised pass; where that pass finds anything amiss, the
    line-by-line reader runs instead, to name the file and the line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fast = _fast_triples(path, shape)
    return fast if fast is not None else _read_triples_by_line(path, shape)


def _fast_triples(path: Path, shape: tuple[int, int] | None) -> Triples | None:
    try:
        # numpy's C reader: two integers and a number a line (blank lines skipped); anything else raises.
        # Reading the indices as integers, not as floats checked to be whole, is a third faster, and
        # refuses "1.0" as an index here as the line-by-line reader does.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": an empty file is empty
            triples = np.loadtxt(path, dtype=_TRIPLE, ndmin=1, comments=None)
    except ValueError:
        return None
    rows, cols = triples["row"] - 1, triples["col"] - 1
    if rows.size and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= MAX_INDEX):
        return None
    if shape is not None and rows.size and (rows.max() >= shape[0] or cols.max() >= shape[1]):
        return None
    if shape is None:
        shape = (int(rows.max(initial=-1)) + 1, int(cols.max(initial=-1)) + 1)
    return Triples(rows, cols, triples["value"].astype(np.float32), shape)


def _read_triples_by_line(path: Path, shape: tuple[int, int] | None) -> Triples:
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 3:
                raise DataError(f"{path}:{n}: expected 'row col value', got {line.strip()!r}")
            try:
                r, c, v = int(parts[0]), int(parts[1]), float(parts[2])
            except ValueError:
                raise DataError(
                    f"{path}:{n}: row and col must be integers and value a number: {line.strip()!r}"
                ) from None
            if r < 1 or c < 1 or max(r, c) > MAX_INDEX or (shape and (r > shape[0] or c > shape[1])):
                limit = f" (1..{shape[0]}, 1..{shape[1]})" if shape else f" (they are 1-based, at most {MAX_INDEX})"
                raise DataError(f"{path}:{n}: index out of range{limit}: {line.strip()!r}")
            rows.append(r - 1)
            cols.append(c - 1)
            vals.append(v)
    if shape is None:
        shape = (max(rows, default=-1) + 1, max(cols, default=-1) + 1)
    return Triples(np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(vals, np.float32), shape)


def layer_path(root: Path, neurons: int, k: int) -> Path:
    return root / f"neuron{neurons}" / f"n{neurons}-l{k}.tsv"


def images_path(root: Path, neurons: int) -> Path:
    return root / f"sparse-images-{neurons}.tsv"


def truth_path(root: Path, neurons: int, depth: int) -> Path:
    return root / f"neuron{neurons}-l{depth}-categories.tsv"


def layers_present(root: Path, neurons: int) -> int:
    """How many consecutive layer files (l1, l2, ...) the directory holds for this neuron count."""
    k = 0
    while layer_path(root, neurons, k + 1).is_file():
        k += 1
    return k


def load_network(root: Path, neurons: int, depth: int) -> Network:
    check_depth(root, neurons, depth)
    return Network(neurons, load_layers(root, neurons, 1, depth), bias_for(neurons))


def check_depth(root: Path, neurons: int, depth: int) -> None:
    """Refuse a depth the directory does not hold, naming the depth it does."""
    present = layers_present(root, neurons)
    if present < depth:
        hint = f"pass --layers {present}" if present else f"is it a {neurons}-neuron Graph Challenge directory?"
        raise DataError(
            f"{root}: --layers {depth} asked for, but neuron{neurons}/ holds layers 1-{present} only: {hint}"
            if present
            else f"{root}: no neuron{neurons}/n{neurons}-l1.tsv: {hint}"
        )


def load_layers(root: Path, neurons: int, first: int, last: int) -> list[sp.csr_matrix]:
    """Layers first..last (1-based, inclusive), each parsed and its edges counted."""
    return [checked_layer(root, neurons, k, read_triples(layer_path(root, neurons, k), (neurons, neurons)))
            for k in range(first, last + 1)]  # fmt: skip


def matrix(parsed: Compact) -> sp.csr_matrix:
    """The CSR matrix of a file's triples, or of the CSR arrays (and shape) they were turned into."""
    if isinstance(parsed, Triples):
        return parsed.to_csr()
    import scipy.sparse as sp

    parts, shape = parsed
    return sp.csr_matrix(parts, shape=shape)


def checked_layer(root: Path, neurons: int, k: int, parsed: Compact) -> sp.csr_matrix:
    """Layer k's matrix from its file's triples (or the CSR arrays they make), its edges counted."""
    layer = matrix(parsed)
    check_edges(layer_path(root, neurons, k), layer.indices, neurons)
    return layer


def check_edges(path: Path, indices: np.ndarray, neurons: int) -> None:
    """Every Graph Challenge layer has FAN_IN edges into every neuron. A file cut at a line boundary
    still parses, and a run on it gives other categories: count the edges instead of trusting it."""
    expected = FAN_IN * neurons
    if indices.size != expected:
        raise DataError(
            f"{path}: {indices.size} edges, but a {neurons}-neuron layer has {expected} ({FAN_IN} into every "
            "neuron): the file is cut short or damaged; download or generate it again"
        )
    fan_in = np.bincount(indices, minlength=neurons)
    short = np.flatnonzero(fan_in != FAN_IN)
    if short.size:
        raise DataError(
            f"{path}: neuron {int(short[0]) + 1} has {int(fan_in[short[0]])} edges into it, not {FAN_IN} "
            f"({short.size} neuron(s) differ): the file is damaged; download or generate it again"
        )


def load_inputs(root: Path, neurons: int, count: int | None = None) -> sp.csr_matrix:
    y = read_inputs(root, neurons).to_csr()
    if count is not None:
        y.resize((count, neurons))
    return y.tocsr()


def read_inputs(root: Path, neurons: int) -> Triples:
    """The inputs file's triples, one row an image, as wide as the network."""
    t = read_triples(images_path(root, neurons), None)
    if t.shape[1] > neurons:
        raise DataError(f"{images_path(root, neurons)}: a neuron index exceeds {neurons}")
    return Triples(t.rows, t.cols, t.values, (t.shape[0], neurons))


def load_truth(root: Path, neurons: int, depth: int) -> np.ndarray | None:
    path = truth_path(root, neurons, depth)
    if not path.is_file():
        return None
    ids = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    ids.append(int(line))
                except ValueError:
                    raise DataError(f"{path}:{n}: expected one integer image id, got {line.strip()!r}") from None
    return np.asarray(sorted(ids), dtype=np.int64)


def _write_triples(path: Path, m: sp.spmatrix) -> None:
    import scipy.sparse as sp

    coo = sp.coo_matrix(m)
    order = np.lexsort((coo.col, coo.row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for r, c, v in zip(coo.row[order], coo.col[order], coo.data[order], strict=True):
            f.write(f"{r + 1}\t{c + 1}\t{v:g}\n")


def write_dataset(root: Path, net: Network, inputs: sp.csr_matrix, truth: np.ndarray) -> None:
    for k, w in enumerate(net.layers, 1):
        _write_triples(layer_path(root, net.neurons, k), w)
    _write_triples(images_path(root, net.neurons), inputs)
    with open(truth_path(root, net.neurons, net.depth), "w") as f:
        f.writelines(f"{i}\n" for i in truth)
