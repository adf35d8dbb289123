"""The original's wire, pinned against the original's code restated here (SDS-Inf-Code's queue and
object workers: send_row_extractor, send_row_chunker_wrapper, csr_to_bytes_string_new,
bytes_string_to_csr_new)."""

from __future__ import annotations

import time
import zlib
from operator import itemgetter

import numpy as np
import pytest
import scipy.sparse as sp

from lambda_src.sdsinf import wire
from lambda_src.sdsinf.original_compute import OriginalLayers


def original_chunks(row_nnz: dict[int, int], cap: int) -> list[list[int]]:
    """send_row_extractor's chunking, as the original writes it: rows sorted by nonzeros, descending;
    one chunk if the total fits; else passes that each fill one chunk."""
    selector = {r: n for r, n in sorted(row_nnz.items(), key=itemgetter(1), reverse=True) if n}
    if sum(selector.values()) <= cap:
        return [list(selector)]
    chunks, left = [], dict(selector)
    while left:
        chunk: dict[int, int] = {}
        total = 0
        for row, n in left.items():
            if n > cap:
                chunk[row] = n
                total += n
                break
            elif total + n <= cap and n > 0:
                chunk[row] = n
                total += n
        chunks.append(list(chunk))
        for row in chunk:
            del left[row]
    return chunks


def original_message(values: list[float], rows: list[int], cols: list[int], dtype: type = np.float32) -> str:
    """csr_to_bytes_string_new: a (3, nnz) array of values, rows and columns, zlib level 3, str()."""
    output_np = np.zeros((3, len(values)), dtype=dtype)
    output_np[0, :], output_np[1, :], output_np[2, :] = values, rows, cols
    return str(zlib.compress(output_np, level=3))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("cap", [50, 400, 40_000])
def test_chunks_are_cut_by_nonzero_count_as_the_original_cuts_them(seed: int, cap: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 120, size=int(rng.integers(1, 60))).tolist()
    counts[0] = 0  # a row with no nonzero is not sent
    if seed % 2:
        counts[-1] = cap + 7  # a row over the cap travels alone
    ours = [[i for i in chunk] for chunk in wire.chunk_rows(counts, cap)]
    assert ours == original_chunks(dict(enumerate(counts)), cap)
    assert all(sum(counts[i] for i in chunk) <= cap or len(chunk) == 1 for chunk in ours)


def test_the_nonzero_cap_follows_the_layer_as_the_originals_does() -> None:
    """MAX_NNZ_PER_MESSAGE: 40,000 at layer 0 of each batch, 120,000 from layer 25, 180,000 from 35."""
    assert [wire.nnz_cap(layer) for layer in (0, 24, 25, 34, 35, 119)] == [
        40_000, 40_000, 120_000, 120_000, 180_000, 180_000
    ]  # fmt: skip


def test_a_message_is_the_originals_text_byte_for_byte_and_parses_back() -> None:
    block = np.zeros((5, 3), dtype=np.float32)  # 5 inputs, 3 neurons (ids 7, 2, 9)
    block[0, 0], block[4, 0], block[1, 1], block[2, 1], block[3, 1] = 32.0, 1.5, 0.25, 8.0, 32.0
    ids = np.array([7, 2, 9])
    [text] = wire.encode_queue(ids, block, layer=0)
    # rows largest first: neuron 2 (3 nonzeros), then neuron 7 (2); neuron 9 has none and is not sent
    assert text == original_message([0.25, 8.0, 32.0, 32.0, 1.5], [2, 2, 2, 7, 7], [1, 2, 3, 0, 4])
    coo = wire.unpack(text, neurons=10, batch=5)
    full = np.zeros((5, 10), dtype=np.float32)
    full[coo.cols, coo.rows] = coo.values
    assert np.array_equal(full[:, ids], block)


def test_an_object_file_is_the_whole_block_in_float64_as_the_object_worker_writes_it() -> None:
    block = np.zeros((4, 2), dtype=np.float32)
    block[1, 0], block[2, 1], block[3, 1] = 3.0, 32.0, 0.5
    text = wire.encode_object(np.array([5, 6]), block)
    assert text == original_message([32.0, 0.5, 3.0], [6, 6, 5], [2, 3, 1], dtype=np.float64)
    empty = wire.encode_object(np.array([5, 6]), np.zeros((4, 2), dtype=np.float32))
    assert empty == original_message([0.0], [0], [0], dtype=np.float64)  # the original's zero CSR
    # ... which carries nothing: read back it must not set neuron 0 of input 0 (the receiver's own, maybe)
    assert wire.Codec("object").decode([empty], neurons=8, batch=4).values.size == 0
    assert wire.Codec("object").decode([text], neurons=8, batch=4).values.tolist() == [32.0, 0.5, 3.0]


def test_an_object_file_of_a_big_block_is_read_back_whatever_its_size() -> None:
    """An Object file is a whole block, bounded by the block's shape, not by SNS's 256 KiB."""
    rng = np.random.default_rng(4)
    block = ((rng.random((3000, 100)) < 0.4) * rng.random((3000, 100)) * 32).astype(np.float32)
    text = wire.encode_object(np.arange(100), block)
    assert len(text) > 1024 * 1024
    coo = wire.Codec("object").decode([text], neurons=100, batch=3000)
    full = np.zeros((3000, 100), dtype=np.float32)
    full[coo.cols, coo.rows] = coo.values
    assert np.array_equal(full, block)


def test_every_message_fits_sns_and_a_block_comes_back_whole() -> None:
    rng = np.random.default_rng(3)
    # incompressible values: chunks of 40,000 nonzeros are over 256 KiB and must be split again
    block = ((rng.random((3000, 100)) < 0.4) * rng.random((3000, 100)) * 32).astype(np.float32)
    ids = np.arange(100) * 4 + 1
    messages = wire.encode_queue(ids, block, layer=3)
    assert len(messages) > 1
    assert max(len(m) for m in messages) <= wire.MAX_MESSAGE_CHARS
    coo = wire.Codec("queue").decode(messages, neurons=400, batch=3000)
    full = np.zeros((3000, 400), dtype=np.float32)
    full[coo.cols, coo.rows] = coo.values
    assert np.array_equal(full[:, ids], block)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",  # the original evals this; skydeck never runs received text
        "b'' + b''",  # an expression, not a literal
        "'not bytes'",
        str(zlib.compress(b"\x00" * 12 * 10_000)),  # inflates past a 10 x 10 block: refused, not allocated
        str(zlib.compress(np.array([[1.0], [99.0], [0.0]], dtype=np.float32).tobytes())),  # neuron 99 of 10
        str(b"not zlib"),
    ],
)
def test_a_received_message_that_is_not_a_block_is_refused_without_running_it(text: str) -> None:
    with pytest.raises(wire.WireError):
        wire.unpack(text, neurons=10, batch=10)


def test_the_npz_wire_stays_an_option_and_round_trips() -> None:
    block = np.zeros((6, 3), dtype=np.float32)
    block[2, 1], block[5, 2] = 4.0, 32.0
    codec = wire.codec_for("npz", "queue")
    coo = codec.decode(codec.encode(np.array([1, 4, 8]), block, 0), neurons=9, batch=6)
    got = zip(coo.rows.tolist(), coo.cols.tolist(), coo.values.tolist(), strict=True)
    assert sorted(got) == [(4, 2, 4.0), (8, 5, 32.0)]
    with pytest.raises(wire.WireError, match="original, compact, npz"):
        wire.codec_for("json", "queue")


def _original_post_process(z) -> None:  # noqa: ANN001 - a scipy matrix, changed in place as the original's
    # multiply_post_process (SDS-Inf-Code's queue worker): values change, the stored pattern does not
    z.data = np.where(z.data != 0, z.data + BIAS, z.data)
    z.data = np.where(z.data < 0, 0, z.data)
    z.data = np.where(z.data > 32, 32, z.data)


BIAS = -0.3


def test_the_original_wire_counts_the_entries_scipy_holds_layer_by_layer() -> None:
    # the original counted NNZ, each row's nonzeros and NNZ_SENT in SciPy's stored entries, which keep
    # the entries its ReLU zeroed; skydeck counted true nonzeros: 27,577 against 123,740 on one layer
    from scipy import sparse

    from lambda_src.sdsinf.distributed import next_layer
    from lambda_src.sdsinf.original_compute import OriginalLayers

    rng = np.random.default_rng(3)
    neurons, inputs = 64, 200
    weights = [sparse.random(neurons, neurons, density=0.3, random_state=rng, format="csr", dtype=np.float32)
               for _ in range(6)]  # fmt: skip
    for w in weights:
        w.data[:] = rng.uniform(0.01, 0.2, w.data.size)  # some sums fall below the bias, others survive
    h0 = sparse.random(inputs, neurons, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    h0.data[:] = 1.0
    theirs = h0.copy()
    everyone = np.arange(neurons)
    ours = OriginalLayers.start(h0, everyone, neurons, BIAS)  # one worker holding every neuron
    compact = h0.toarray()
    zeroed_but_held = 0
    for w in weights:
        theirs = theirs @ w
        _original_post_process(theirs)
        ours.step(sparse.csr_matrix(w.T), [])  # the original's W[layer]: output neurons' rows
        held = ours.held(everyone)
        compact = next_layer(compact, w, BIAS)
        assert ours.nnz() == theirs.getnnz()
        assert np.array_equal(ours.row_counts(), theirs.getnnz(axis=0))  # a neuron's row
        assert np.allclose(held, theirs.toarray(), atol=1e-5) and np.array_equal(held, compact)  # one answer
        assert int(np.count_nonzero(compact)) == int(np.count_nonzero(theirs.toarray()))
        zeroed_but_held += theirs.getnnz() - int(np.count_nonzero(theirs.toarray()))
    assert np.count_nonzero(held) > 0 and zeroed_but_held > 0  # alive, and the ReLU left stored zeros to count


def _held_as_the_original(ids: np.ndarray, block: np.ndarray, stored: np.ndarray) -> tuple:  # noqa: ANN001
    """A (batch x rows) block as the original's matrix holds it, stored zeros kept: (rows_of, ids, counts)
    for encode_queue_rows / encode_object_rows."""
    from scipy import sparse

    from lambda_src.sdsinf.original_compute import OriginalLayers

    cols, rows = np.nonzero(stored)
    h = sparse.csr_matrix(
        (block[cols, rows], (np.asarray(ids)[rows], cols)), shape=(int(max(ids)) + 1, block.shape[0])
    )  # csr_matrix((data, (row, col))) keeps explicit zeros, as the original's product leaves them
    held = OriginalLayers(h.shape[0], BIAS, h)
    return held.rows, [int(i) for i in ids], held.row_counts()[ids].tolist()


def test_the_original_wire_cuts_chunks_by_stored_entries_and_sends_a_zeroed_chunk_as_zeros() -> None:
    # four rows of 9,000 inputs fit one 40,000 chunk; a fifth row whose 9,000 entries the ReLU zeroed
    # is still a row of 9,000 to the original: the block is cut in two, and the second is (3, 1) zeros
    batch = 9_000
    block = np.zeros((batch, 5), dtype=np.float32)
    block[:, :4] = 1.0
    stored = np.ones_like(block, dtype=bool)
    ids = np.arange(10, 15)
    assert len(wire.encode_queue(ids, block, 0)) == 1  # compact: only true nonzeros count
    messages = wire.encode_queue_rows(*_held_as_the_original(ids, block, stored), 0)
    assert len(messages) == 2
    assert wire.unpack(messages[1], 16, batch).values.size == 0
    assert wire.unpack(messages[0], 16, batch).values.size == 4 * batch  # only true nonzeros travel


def test_the_original_wire_refuses_a_row_the_original_would_quit_on() -> None:
    batch = 10_001  # a row of one neuron over 10,001 inputs, in a block that must be cut
    block = np.ones((batch, 5), dtype=np.float32)
    with pytest.raises(wire.WireError, match="MAX_NNZ_PER_ROW of 10,000"):
        wire.encode_queue_rows(*_held_as_the_original(np.arange(5), block, block != 0), 0)
    assert len(wire.encode_queue(np.arange(5), block, 0)) >= 2  # compact has no such limit


def test_the_original_object_file_holds_rows_by_ascending_neuron_id() -> None:
    block = np.zeros((3, 3), dtype=np.float32)
    block[:, 0] = 1.0  # neuron 30: three inputs
    block[0, 2] = 2.0  # neuron 10: one
    ids = np.array([30, 20, 10])
    rows_of, row_ids, counts = _held_as_the_original(ids, block, block != 0)
    rows = wire.unpack(wire.encode_object_rows(rows_of, row_ids, counts), 40, 3, np.float64).rows.tolist()
    assert rows == [10, 30, 30, 30]
    # and each row's inputs ascending, as the original's rebuilt CSR sorts them (SciPy's product order
    # within a row made skydeck's files 4% larger than the original's, the largest 12%)
    def scrambled(rows: list[int]) -> wire.Coo:
        coo = rows_of(rows)
        return wire.Coo(coo.values[::-1], coo.rows[::-1], coo.cols[::-1])

    got = wire.unpack(wire.encode_object_rows(scrambled, row_ids, counts), 40, 3, np.float64)
    assert list(zip(got.rows.tolist(), got.cols.tolist(), strict=True)) == [(10, 0), (30, 0), (30, 1), (30, 2)]
    compact = wire.unpack(wire.encode_object(ids, block), 40, 3, np.float64).rows.tolist()
    assert compact == [30, 30, 30, 10]  # compact: largest first


def test_the_original_wires_compression_time_is_zlib_and_the_literal_alone() -> None:
    # the original's METRIC_ELAPSED_TIME_COMPRESSION times zlib.compress and str() when it sends, and
    # eval, the inflate and the array's view when it receives; skydeck's timed the row extraction and
    # the whole decode too (61x the original's on the same run)
    block = np.ones((40, 6), dtype=np.float32)
    rows_of, row_ids, counts = _held_as_the_original(np.arange(6), block, block != 0)

    def slow_rows(rows: list[int]) -> wire.Coo:
        time.sleep(0.3)  # the row extraction: outside the original's compression timer
        return rows_of(rows)

    codec = wire.Codec("queue", "original")
    started = time.perf_counter()
    messages = codec.encode_rows(slow_rows, row_ids, counts, 0)
    spent = time.perf_counter() - started
    assert spent >= 0.3 and 0 < codec.clock.seconds < spent - 0.25
    before = codec.clock.seconds
    (got,) = codec.decode_parts(messages, 6, 40)
    assert got.values.size == 240 and codec.clock.seconds > before


def test_an_object_block_is_read_as_float64_and_turns_the_originals_activations_float64() -> None:
    # the original's Object worker reads a block's float64 array as it is, and `Z += W * recv` with W
    # float32 makes Z float64 from then on: its files carry float64 values (4.6% more bytes than
    # skydeck's, which read the block as float32, on the same 8-worker run)
    value = 0.1  # not a float32
    text = wire.pack(wire.Coo(np.array([value]), np.array([1]), np.array([0])), np.float64)
    got = wire.unpack(text, 4, 1, np.float64)
    assert got.values.dtype == np.float64 and got.values[0] == value
    layers = OriginalLayers.start(sp.csr_matrix(np.ones((1, 2), dtype=np.float32)), np.array([0, 1]), 4, 0.0)
    layers.step(sp.identity(4, dtype=np.float32, format="csr"), [[got]])
    assert layers.h.dtype == np.float64 and layers.h[1, 0] == 1.0 + value  # its own 1.0, plus the block


def test_an_overflow_part_still_too_long_ends_an_original_run_and_is_split_again_in_compact() -> None:
    # the original's send_row_chunker_wrapper sends its overflow part as it is, and prepare_message_batches
    # then quits on it ("BIG MESSAGE - QUITTING"); the docs said it published it and SNS refused it
    rng = np.random.default_rng(5)
    block = rng.uniform(0.1, 32.0, size=(8_000, 5)).astype(np.float32)  # incompressible values
    with pytest.raises(wire.WireError, match="the original's worker quits there"):
        wire.encode_queue_rows(*_held_as_the_original(np.arange(5), block, block != 0), 0)
    messages = wire.encode_queue(np.arange(5), block, 0)
    assert all(len(m) <= wire.MAX_MESSAGE_CHARS for m in messages)


def test_a_publish_batch_is_retried_when_throttled_and_its_failed_entries_sent_once_more() -> None:
    # the original publishes from 4 threads, backs off when SNS throttles it and resends what failed
    # once; skydeck published once and failed the run on the first refused entry. SNS's throttling and
    # per-entry failures cannot be made to happen on the local cloud: botocore's Stubber answers here.
    import boto3
    from botocore.stub import Stubber

    from lambda_src.sdsinf.queue_variant import QueueTransport

    sns = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    transport = QueueTransport.__new__(QueueTransport)
    transport.sns, transport.topic = sns, "arn:aws:sns:us-east-1:123456789012:t"
    transport.publish_calls, transport.publish_sizes = 0, []
    transport._pending = [(f"m{i}", {}) for i in range(3)]
    entries = [{"Id": str(i), "Message": f"m{i}", "MessageAttributes": {}} for i in range(3)]
    with Stubber(sns) as stub:
        stub.add_client_error("publish_batch", service_error_code="Throttled", http_status_code=400)
        stub.add_response(
            "publish_batch",
            {
                "Successful": [{"Id": "0"}, {"Id": "2"}],
                "Failed": [{"Id": "1", "Code": "InternalError", "SenderFault": False}],
            },
            {"TopicArn": transport.topic, "PublishBatchRequestEntries": entries},
        )
        stub.add_response(
            "publish_batch", {"Successful": [{"Id": "1"}], "Failed": []},
            {"TopicArn": transport.topic, "PublishBatchRequestEntries": [entries[1]]},
        )  # fmt: skip
        transport.flush()
        stub.assert_no_pending_responses()
    assert transport.publish_calls == 2 and transport.publish_sizes == [6]  # as the original counts them


def _original_send_row_chunker(h, row_ids: list[int]) -> str:  # noqa: ANN001
    """send_row_chunker + csr_to_bytes_string_new, restated: getrow, vstack, eliminate_zeros, tocoo,
    the stacked rows renamed to their ids, a float32 (3, nnz) array, zlib level 3, str()."""
    from scipy.sparse import vstack

    stack = vstack([h.getrow(r) for r in row_ids])
    stack.eliminate_zeros()
    coo = stack.tocoo()
    out = np.zeros((3, max(coo.nnz, 1)), dtype=np.float32)
    if coo.nnz:
        out[0], out[1], out[2] = coo.data, np.asarray(row_ids)[coo.row], coo.col
    return str(zlib.compress(out, 3))


def test_the_original_wire_sends_each_rows_inputs_in_scipys_order_byte_for_byte() -> None:
    # skydeck sent a row's inputs in ascending order, 13-40% fewer bytes than the original's messages
    # for the same rows: the original's order is that of SciPy's products and sums
    from scipy import sparse

    from lambda_src.sdsinf.original_compute import OriginalLayers, owned_rows

    rng = np.random.default_rng(11)
    neurons, inputs = 32, 40
    w = sparse.random(neurons, neurons, density=0.3, random_state=rng, format="csc", dtype=np.float32)
    w.data[:] = rng.uniform(0.05, 0.3, w.data.size)
    x = sparse.random(inputs, neurons, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    mine, theirs = np.arange(16), np.arange(16, 32)  # worker 0 computes 0-15; 16-31 come from worker 1
    # the original's worker 0: W (its rows, sorted as its nnp file), H = train.transpose(), Z = W * H,
    # then Z += W * (worker 1's block), then multiply_post_process
    wt = sparse.coo_matrix(w.T)
    keep = np.isin(wt.row, mine)
    order = np.lexsort((wt.col[keep], wt.row[keep]))
    w0 = sparse.csr_matrix((wt.data[keep][order], (wt.row[keep][order], wt.col[keep][order])), shape=(32, 32))
    xc = sparse.coo_matrix(x)
    own, other = np.isin(xc.col, mine), np.isin(xc.col, theirs)
    h_own = sparse.csr_matrix((xc.data[own], (xc.row[own], xc.col[own])), shape=(inputs, neurons)).transpose()
    block = sparse.csr_matrix((xc.data[other], (xc.col[other], xc.row[other])), shape=(neurons, inputs))
    z = w0 * h_own
    z = z + w0 * block
    _original_post_process(z)
    theirs_text = _original_send_row_chunker(z, [3, 1, 7])
    ours = OriginalLayers.start(x[:, mine], mine, neurons, BIAS)
    sent = block.tocoo()
    ours.step(owned_rows(w[:, mine], mine, neurons), [[wire.Coo(sent.data, sent.row, sent.col)]])
    assert wire.pack(ours.rows([3, 1, 7])) == theirs_text
    ascending = wire.Coo.of(np.array([3, 1, 7]), ours.held(np.array([3, 1, 7])))
    assert wire.pack(ascending) != theirs_text  # the order is what differs, not the entries
