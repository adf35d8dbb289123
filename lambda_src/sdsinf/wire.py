"""The original's wire: how a block of activations travels between workers, and how it is cut.

A block is the rows (neurons) that one worker sends another for a layer, over the batch's inputs.
As the original's queue and object workers encode it (`csr_to_bytes_string_new`, `send_row_extractor`):

- a chunk is the COO of some of those rows, as one float array of shape (3, nnz): values, then the
  neuron (row) ids, then the input (column) indices; float32 on the Queue variant, float64 on the
  Object variant (its `np.zeros` default);
- the array's bytes are compressed with zlib at level 3, and the message is the Python text form of
  that byte string (`str(bytes)`, "b'x^...'"); sizes are the text's UTF-8 length;
- on the Queue variant a block's rows, largest first, are packed into chunks of at most
  MAX_NNZ_PER_MESSAGE nonzeros (40,000, from layer 25 of a batch 120,000, from layer 35 180,000); a row
  over the cap travels alone; a chunk whose text is over 99% of 256 KiB is split by taking its largest
  rows until they hold half its nonzeros. The Object variant writes a whole block as one file.

What the original counts (`--wire original`): its activations are SciPy sparse matrices, and
`multiply_post_process` adds the bias, applies the ReLU and the cap to the *stored* entries, so an
entry the ReLU zeroed stays stored. Every count it takes (NNZ, a row's nonzeros, NNZ_SENT, the chunk
cuts, the empty-target test, METRIC_MAX_ROW_NNZ, ROWS_SENT) counts stored entries, while the message
itself carries only true nonzeros (`eliminate_zeros` before it is packed). A chunk whose rows hold
only stored zeros is sent as the (3, 1) zeros. `--wire compact` is the same wire counting true
nonzeros only: fewer rows, chunks and messages for the same answer.

Received text is never `eval`ed, as the original does: it is parsed by `ast.literal_eval`, which
takes nothing but a literal, must give bytes, and is inflated with a bound set by the receiver.
"""

from __future__ import annotations

import ast
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lambda_src.sdsinf.names import WIRES

MAX_BATCH_MESSAGE_BYTES = 262144
MAX_NNZ_PER_ROW = 10_000  # the original's: a row over it, in a block cut into chunks, ends the worker
MAX_MESSAGE_CHARS = int(MAX_BATCH_MESSAGE_BYTES * 0.99)  # the original's MAX_ALLOWED_BATCH_MESSAGE_SIZE
COMPRESSION_LEVEL = 3


class WireError(ValueError):
    """A received message that is not a block in the original's wire form."""


def nnz_cap(layer: int) -> int:
    """The original's MAX_NNZ_PER_MESSAGE at `layer` of a batch (it is set again at layer 0 of each)."""
    return 40_000 if layer < 25 else 120_000 if layer < 35 else 180_000


@dataclass
class CompressionClock:
    """Seconds spent in the original's compression span (its METRIC_ELAPSED_TIME_COMPRESSION): on
    sending, `zlib.compress` and `str()` of the packed array (csr_to_bytes_string_new starts its timer
    after the array is built); on receiving, the literal's parse, the inflate and the array's view
    (bytes_string_to_csr_new stops before it builds the matrix)."""

    seconds: float = 0.0


@dataclass(frozen=True)
class Coo:
    """Nonzeros of a block: `rows` are neuron ids, `cols` input indices within the batch."""

    values: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def of(cls, neuron_ids: np.ndarray, block: np.ndarray) -> Coo:
        """From a dense (batch x rows) block whose columns are the neurons `neuron_ids`, in the original's
        order: row by row (in the order given), each row's inputs ascending."""
        r, c = np.nonzero(block.T)
        return cls(block.T[r, c], np.asarray(neuron_ids)[r], c)


def pack(coo: Coo, dtype: type = np.float32, clock: CompressionClock | None = None) -> str:
    """One message: the (3, nnz) array, zlib level 3, as Python writes the bytes (`str(bytes)`)."""
    n = coo.values.size
    arr: np.ndarray = np.zeros((3, max(n, 1)), dtype=dtype)  # no nonzero: the original's (3, 1) zeros
    if n:
        arr[0], arr[1], arr[2] = coo.values, coo.rows, coo.cols
    started = time.perf_counter()
    text = str(zlib.compress(arr.tobytes(), COMPRESSION_LEVEL))
    if clock is not None:
        clock.seconds += time.perf_counter() - started
    return text


def unpack(text: str, neurons: int, batch: int, dtype: type = np.float32, clock: CompressionClock | None = None) -> Coo:
    """A message back into nonzeros; refuses anything but a bounded block of this batch's shape."""
    started = time.perf_counter()
    coo = _unpack(text, neurons, batch, dtype)
    if clock is not None:
        clock.seconds += time.perf_counter() - started
    return coo


def _unpack(text: str, neurons: int, batch: int, dtype: type) -> Coo:
    item = np.dtype(dtype).itemsize
    limit = 3 * item * max(neurons * batch, 1)
    # the longest text a block of this shape can be: zlib's worst case, each byte written as \xNN
    longest = 4 * (limit + limit // 1000 + 64) + 3
    if not (text.startswith(("b'", 'b"')) and len(text) <= longest):
        raise WireError(f"a block message is a Python bytes literal of at most {longest} characters here")
    try:
        blob = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise WireError(f"a block message did not parse as a bytes literal: {exc}") from None
    if not isinstance(blob, bytes):
        raise WireError("a block message is a bytes literal")
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(blob, limit + 1)
    except zlib.error as exc:
        raise WireError(f"a block message did not inflate: {exc}") from None
    if len(raw) > limit or inflate.unconsumed_tail or len(raw) % (3 * item):
        raise WireError(f"a block message inflates to {len(raw)} bytes: not a block of {neurons} x {batch}")
    arr: np.ndarray = np.frombuffer(raw, dtype=dtype).reshape(3, -1)
    # explicit zeros carry nothing (the original's eliminate_zeros before it multiplies): an empty
    # block's (3, 1) zeros must not be written over neuron 0 of input 0 by whoever receives it
    arr = arr[:, arr[0] != 0]
    rows, cols = arr[1].astype(np.int64), arr[2].astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= neurons or cols.min() < 0 or cols.max() >= batch):
        raise WireError(f"a block message names a neuron or an input outside {neurons} x {batch}")
    # values keep the wire's type: the original's Object worker reads float64 blocks, and its Z turns
    # float64 from the first block it adds (W float32 times a float64 block), as its files then are
    return Coo(arr[0].copy(), rows, cols)


def chunk_rows(row_nnz: Sequence[int], cap: int, row_limit: int | None = None) -> list[list[int]]:
    """The original's chunks of a block: indices into its rows, each chunk at most `cap` nonzeros.
    Rows are taken largest first (ties in their given order); each pass over the rows left fills one
    chunk with every row that still fits; a row over `cap` alone makes a chunk. Rows without a nonzero
    are not sent. With `row_limit` (the original's MAX_NNZ_PER_ROW), a block cut into chunks may hold
    no row over it, as the original's may not."""
    order = sorted((i for i, n in enumerate(row_nnz) if n > 0), key=lambda i: -row_nnz[i])
    if sum(row_nnz[i] for i in order) <= cap:
        return [order] if order else []
    widest = max(row_nnz[i] for i in order)
    if row_limit is not None and widest > row_limit:
        raise WireError(
            f"a neuron's row holds {widest} entries, more than the original's MAX_NNZ_PER_ROW of "
            f"{row_limit:,} (its worker quits there): use batches of at most {row_limit:,} inputs, "
            "or --wire compact"
        )
    chunks: list[list[int]] = []
    left = order
    while left:
        chunk: list[int] = []
        total = 0
        for i in left:
            if row_nnz[i] > cap:
                if not chunk:
                    chunk.append(i)
                break
            if total + row_nnz[i] <= cap:
                chunk.append(i)
                total += row_nnz[i]
        taken = set(chunk)
        left = [i for i in left if i not in taken]
        chunks.append(chunk)
    return chunks


def encode_queue(neuron_ids: np.ndarray, block: np.ndarray, layer: int) -> list[str]:
    """A block's messages on the Queue variant, cut as the original cuts them (float32 chunks), counting
    true nonzeros (`--wire compact`; `--wire original` counts stored entries: encode_queue_rows)."""
    block_t = block.T  # (rows x batch): the original's H rows
    row_nnz = np.count_nonzero(block_t, axis=1)
    messages: list[str] = []

    def text_of(rows: list[int]) -> str:
        return _chunk_text(neuron_ids, block_t, rows)

    for chunk in chunk_rows(row_nnz.tolist(), nnz_cap(layer)):
        messages += _fit(text_of, chunk, [int(row_nnz[i]) for i in chunk])
    return messages


def encode_queue_rows(
    rows_of: Callable[[list[int]], Coo], ids: list[int], counts: list[int], layer: int,
    clock: CompressionClock | None = None,
) -> list[str]:  # fmt: skip
    """A block's messages on the Queue variant from the original's own matrix (original_compute): `ids`
    the neurons sent to one target, ascending; `counts` their stored entries. Rows are taken with
    `rows_of` (SciPy's order within a row), counted and cut as the original does."""
    messages: list[str] = []
    for chunk in chunk_rows(counts, nnz_cap(layer), MAX_NNZ_PER_ROW):
        chunk_ids = [ids[i] for i in chunk]
        messages += _fit(
            lambda rows: pack(rows_of(rows), clock=clock), chunk_ids, [counts[i] for i in chunk], strict=True
        )
    return messages


def encode_object_rows(
    rows_of: Callable[[list[int]], Coo], ids: list[int], counts: list[int], clock: CompressionClock | None = None
) -> str:
    """A block's file on the Object variant from the original's own matrix: the rows with an entry, in
    the order of the CSR the original rebuilds from them (`csr_matrix((data, (row, col)))` sums
    duplicates, which sorts): neurons ascending, and each row's inputs ascending; float64."""
    kept = sorted(i for i, n in zip(ids, counts, strict=True) if n > 0)
    if not kept:  # nothing for that target: the original's zero file
        empty = Coo(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return pack(empty, np.float64, clock)
    coo = rows_of(kept)
    order = np.lexsort((coo.cols, coo.rows))
    return pack(Coo(coo.values[order], coo.rows[order], coo.cols[order]), np.float64, clock)


def _fit(text_of: Callable[[list[int]], str], chunk: list[int], nnz: list[int], strict: bool = False) -> list[str]:
    """A chunk's text, split as the original's send_row_chunker_wrapper splits one that is too long:
    its largest rows, until they hold half its nonzeros, go in a message of their own. `strict` (the
    original): that message goes as it is, and one over the limit ends the run, as the original's
    worker quits on it ("BIG MESSAGE - QUITTING"); otherwise it is split again."""
    text = text_of(chunk)
    out: list[str] = []
    half = sum(nnz) / 2
    rows, counts = list(chunk), list(nnz)
    while len(text) > MAX_MESSAGE_CHARS:
        if len(rows) == 1:
            raise WireError(f"one neuron's row of {counts[0]} nonzeros is over the message limit")
        taken, held = 0, 0
        while held < half and len(rows) - taken > 1:
            held += counts[taken]
            taken += 1
        if strict:
            overflow = text_of(rows[:taken])
            if len(overflow) > MAX_MESSAGE_CHARS:
                raise WireError(
                    f"a message of {len(overflow):,} characters is over 99% of 256 KiB: the original's worker "
                    "quits there; --wire compact splits it again"
                )
            out.append(overflow)
        else:
            out += _fit(text_of, rows[:taken], counts[:taken])
        rows, counts = rows[taken:], counts[taken:]
        text = text_of(rows)
    out.append(text)
    return out


def _chunk_text(neuron_ids: np.ndarray, block_t: np.ndarray, rows: list[int]) -> str:
    sub = block_t[rows]
    r, c = np.nonzero(sub)
    return pack(Coo(sub[r, c], np.asarray(neuron_ids)[np.asarray(rows, dtype=np.int64)[r]], c))


def encode_object(neuron_ids: np.ndarray, block: np.ndarray) -> str:
    """A block's file on the Object variant: the whole block, float64, rows largest first (`--wire
    compact`; `--wire original` holds them by ascending neuron id: encode_object_rows)."""
    block_t = block.T
    row_nnz = np.count_nonzero(block_t, axis=1)
    order = sorted(np.flatnonzero(row_nnz).tolist(), key=lambda i: -row_nnz[i])
    sub = block_t[order]
    r, c = np.nonzero(sub)
    return pack(Coo(sub[r, c], np.asarray(neuron_ids)[np.asarray(order, dtype=np.int64)[r]], c), np.float64)


NPZ_PART_BYTES = 180 * 1024  # npz wire: base64 grows a part by 4/3; attributes and the envelope need room too


@dataclass(frozen=True)
class Codec:
    """How one run's blocks become message texts and back: the variant's original wire by default
    (counted as the original counts, in SciPy's stored entries), the same wire counting true
    nonzeros (`compact`), or skydeck's npz (compressed npz, base64, cut at 180 KiB)."""

    variant: str
    wire: str = "original"
    clock: CompressionClock = field(default_factory=CompressionClock, compare=False)

    @property
    def counts_stored(self) -> bool:
        """Whether a worker counts (and cuts by) the entries SciPy would store, as the original does."""
        return self.wire == "original"

    def encode(self, neuron_ids: np.ndarray, block: np.ndarray, layer: int) -> list[str]:
        """A block from the dense kernel (`compact`, `npz`); `original` sends with encode_rows."""
        if self.wire == "npz":
            import base64

            from lambda_src.sdsinf import blocks

            blob = blocks.encode(neuron_ids, block)
            cut = NPZ_PART_BYTES if self.variant == "queue" else max(len(blob), 1)
            return [base64.b64encode(blob[i : i + cut]).decode("ascii") for i in range(0, max(len(blob), 1), cut)]
        if self.variant == "queue":
            return encode_queue(neuron_ids, block, layer)
        return [encode_object(neuron_ids, block)]

    def encode_rows(
        self, rows_of: Callable[[list[int]], Coo], ids: list[int], counts: list[int], layer: int
    ) -> list[str]:
        """The original's messages from its own matrix (lambda_src.sdsinf.original_compute)."""
        if self.variant == "queue":
            return encode_queue_rows(rows_of, ids, counts, layer, self.clock)
        return [encode_object_rows(rows_of, ids, counts, self.clock)]

    def decode_parts(self, messages: Sequence[str], neurons: int, batch: int) -> list[Coo]:
        """One sender's messages, each apart (the original adds a block's chunks up as they come)."""
        dtype = np.float32 if self.variant == "queue" else np.float64
        return [unpack(m, neurons, batch, dtype, self.clock) for m in messages]

    def decode(self, messages: Sequence[str], neurons: int, batch: int) -> Coo:
        """One sender's block from all its messages (a block may come in several)."""
        if self.wire == "npz":
            import base64

            from lambda_src.sdsinf import blocks

            ids, block = blocks.decode(b"".join(base64.b64decode(m) for m in messages))
            return Coo.of(ids, block)
        dtype = np.float32 if self.variant == "queue" else np.float64
        parts = [unpack(m, neurons, batch, dtype) for m in messages]
        if len(parts) == 1:
            return parts[0]
        return Coo(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("values", "rows", "cols")))


def codec_for(wire: str | None, variant: str) -> Codec:
    """The codec a run's request names (`wire`; unset: the original's)."""
    wire = wire or "original"
    if wire not in WIRES:
        raise WireError(f"wire must be one of {', '.join(WIRES)}, not {wire!r}")
    return Codec(variant, wire)
