"""SDS-Inf's math: the Graph Challenge files, the kernel against the reference loop, partitions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lambda_src.sdsinf import graphchallenge as gc
from lambda_src.sdsinf.kernel import LiveRows, categories, infer, reference, saturation_is_stable, transposed
from lambda_src.sdsinf.model import CAP, FAN_IN, generate_inputs, radixnet
from lambda_src.sdsinf.partition import greedy_partition, plans, row_partition


def dense_loop(y: sp.csr_matrix, layers: list[sp.csr_matrix], bias: float) -> np.ndarray:
    """The Graph Challenge's loop written out densely: the bias only where Y.W is nonzero."""
    out = y.toarray().astype(np.float64)
    for w in layers:
        z = out @ w.toarray()
        out = np.where(z != 0, np.minimum(np.maximum(z + bias, 0), CAP), 0)
    return out


def test_generated_network_has_the_published_shape() -> None:
    net = radixnet(1024, 4, seed=3)
    for w in net.layers:
        assert w.shape == (1024, 1024) and w.nnz == 1024 * FAN_IN
        assert set(np.diff(sp.csc_matrix(w).indptr)) == {FAN_IN}  # fan-in 32
        assert set(np.diff(w.indptr)) == {FAN_IN}  # fan-out 32
    assert net.bias == -0.3 and radixnet(4096, 1).bias == -0.35
    assert (radixnet(1024, 2, seed=3).layers[1] != net.layers[1]).nnz == 0  # deterministic by seed


@pytest.mark.parametrize(("neurons", "depth", "seed"), [(1024, 6, 0), (1024, 40, 1), (4096, 8, 2)])
def test_kernel_matches_the_reference_and_a_dense_loop(neurons: int, depth: int, seed: int) -> None:
    net = radixnet(neurons, depth, seed=seed)
    y = generate_inputs(neurons, 120, seed=seed + 10)
    ref = reference(y, net.layers, net.bias)
    live = infer(y, net.layers, net.bias)
    alive = live.alive()
    assert np.array_equal(categories(ref), alive + 1)
    assert np.allclose(ref.toarray()[alive], live.rows(alive), atol=1e-4)
    if neurons == 1024 and depth <= 6:
        assert np.allclose(dense_loop(y, net.layers, net.bias), ref.toarray(), atol=1e-4)
    assert 0 < len(alive) < 120  # the inputs are built so that some rows live and some die


def test_dead_rows_are_dropped_and_stay_dropped() -> None:
    net = radixnet(1024, 10, seed=0)
    y = sp.csr_matrix(np.vstack([np.zeros(1024), np.ones(1024)]).astype(np.float32))
    live = LiveRows(y)
    assert live.ids.tolist() == [1]
    for wt in transposed(net.layers):
        live.step(wt, net.bias)
    assert live.ids.tolist() == [1] and live.y.max() == CAP
    settled = infer(y, net.layers, net.bias)
    assert settled.alive().tolist() == [1] and settled.settled.tolist() == [1]  # retired at the cap


def test_saturation_shortcut_only_where_it_is_exact() -> None:
    net = radixnet(1024, 3, seed=0)
    assert all(saturation_is_stable(wt, net.bias) for wt in transposed(net.layers))
    weak = sp.csr_matrix(net.layers[0] * 0.5)  # cap x 32 x 1/32 - 0.3 < cap: a saturated row decays
    assert not saturation_is_stable(sp.csr_matrix(weak.T), net.bias)
    y = sp.csr_matrix(np.full((3, 1024), CAP, dtype=np.float32))
    live = infer(y, [weak] * 4, net.bias)
    assert live.settled.size == 0
    assert np.allclose(live.rows(live.alive()), reference(y, [weak] * 4, net.bias).toarray())


@pytest.mark.slow
def test_partitions_compute_the_same_answer_and_report_rows_sent() -> None:
    net = radixnet(1024, 5, seed=4)
    y = generate_inputs(1024, 50, seed=5).toarray().T  # neuron-major, as the workers hold it
    full = reference(sp.csr_matrix(y.T), net.layers, net.bias).toarray().T
    for owners in ([row_partition(1024, 4)] * 6, greedy_partition(net.layers, 4)):
        counts = [np.bincount(o, minlength=4) for o in owners]
        assert all(c.max() - c.min() <= 1 for c in counts)  # balanced
        held = {k: {int(i): y[i] for i in np.flatnonzero(owners[0] == k)} for k in range(4)}
        for plan, w in zip(plans(net.layers, owners), net.layers, strict=True):
            inbox = {k: dict(held[k]) for k in range(4)}
            for (src, dst), rows in plan.sends.items():
                for r in rows:
                    inbox[dst][int(r)] = held[src][int(r)]  # exactly the rows the plan says travel
            wc = sp.csc_matrix(w)
            nxt: dict[int, dict[int, np.ndarray]] = {k: {} for k in range(4)}
            for j in range(1024):
                k = int(plan.owner_out[j])
                ins = wc.indices[wc.indptr[j] : wc.indptr[j + 1]]
                z = sum(inbox[k][int(i)] * wc[i, j] for i in ins)
                nxt[k][j] = np.where(z != 0, np.clip(z + net.bias, 0, CAP), 0)
            held = nxt
        result = np.array([held[int(owners[-1][j])][j] for j in range(1024)])
        assert np.allclose(result, full, atol=1e-4)
    assert plans(net.layers, [row_partition(1024, 1)] * 6)[0].rows_sent == 0


def test_malformed_files_are_named_with_their_line(tmp_path: Path) -> None:
    net = radixnet(1024, 2, seed=0)
    y = generate_inputs(1024, 10, seed=1)
    gc.write_dataset(tmp_path, net, y, categories(reference(y, net.layers, net.bias)))
    assert np.array_equal(gc.load_truth(tmp_path, 1024, 2), categories(reference(y, net.layers, net.bias)))
    layer = gc.layer_path(tmp_path, 1024, 2)
    lines = layer.read_text().splitlines()
    layer.write_text("\n".join(lines[:4] + ["5\t2000\t0.0625"] + lines[5:]) + "\n")
    with pytest.raises(gc.DataError, match=r"n1024-l2.tsv:5: index out of range"):
        gc.load_network(tmp_path, 1024, 2)
    layer.write_text("1 2\n")
    with pytest.raises(gc.DataError, match=r"n1024-l2.tsv:1: expected 'row col value'"):
        gc.load_network(tmp_path, 1024, 2)
    # cut at a line boundary: every line parses, but edges are missing
    layer.write_text("\n".join(lines[:-10]) + "\n")
    with pytest.raises(gc.DataError, match=r"n1024-l2.tsv: 32758 edges, but a 1024-neuron layer has 32768"):
        gc.load_network(tmp_path, 1024, 2)
    moved = lines[0].split("\t")  # an edge moved to another neuron: the count holds, a fan-in does not
    layer.write_text("\n".join([f"{moved[0]}\t{(int(moved[1]) % 1024) + 1}\t{moved[2]}"] + lines[1:]) + "\n")
    with pytest.raises(gc.DataError, match=r"n1024-l2.tsv: neuron \d+ has (31|33) edges into it"):
        gc.load_network(tmp_path, 1024, 2)
    layer.write_text("\n".join(lines) + "\n")
    with pytest.raises(gc.DataError, match=r"holds layers 1-2 only: pass --layers 2"):
        gc.load_network(tmp_path, 1024, 3)
    # an inputs file's image id past any sparse matrix's index is refused, not turned into a 2^64 matrix
    images = gc.images_path(tmp_path, 1024)
    images.write_text("1\t2\t1\n99999999999999999999\t3\t1\n")
    with pytest.raises(gc.DataError, match=r"sparse-images-1024.tsv:2: index out of range \(they are 1-based, at most"):
        gc.load_inputs(tmp_path, 1024)
    images.write_text("1\t2\t1\n1.0\t3\t1\n")  # an index is an integer, on the fast reader as on the slow
    with pytest.raises(gc.DataError, match=r"sparse-images-1024.tsv:2: row and col must be integers"):
        gc.load_inputs(tmp_path, 1024)


def test_layers_parsed_on_several_cores_are_the_one_process_parse_in_order_and_name_a_bad_file(tmp_path: Path) -> None:
    from backend.sdsinf.parse import load_all

    net = radixnet(1024, 24, seed=0)
    y = generate_inputs(1024, 30, seed=1)
    gc.write_dataset(tmp_path, net, y, categories(reference(y, net.layers, net.bias)))
    one = load_all(tmp_path, 1024, 24, processes=1, digest_of="x")
    three = load_all(tmp_path, 1024, 24, processes=3, digest_of="x")
    assert len(three.network.layers) == 24 and three.network.bias == one.network.bias
    for mine, theirs, read in zip(
        three.network.layers, one.network.layers, gc.load_layers(tmp_path, 1024, 1, 24), strict=True
    ):
        assert (mine != theirs).nnz == 0 and (mine != read).nnz == 0 and mine.dtype == read.dtype
        assert mine.indices.dtype == read.indices.dtype and mine.indptr.dtype == read.indptr.dtype
    assert (three.inputs != one.inputs).nnz == 0 and np.array_equal(three.truth, one.truth)
    assert three.digest == one.digest and one.digest is not None
    # a layer in the last process's run is damaged: its file and line are named, as by one process
    layer = gc.layer_path(tmp_path, 1024, 20)
    lines = layer.read_text().splitlines()
    layer.write_text("\n".join(lines[:2] + ["3\tx\t0.0625"] + lines[3:]) + "\n")
    with pytest.raises(gc.DataError, match=r"n1024-l20.tsv:3: row and col must be integers"):
        load_all(tmp_path, 1024, 24, processes=3)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "sdsinf", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize(("neurons", "layers"), [(1024, 24), (4096, 6)])
def test_infer_command_gives_exactly_the_truth(tmp_path: Path, neurons: int, layers: int) -> None:
    data = tmp_path / "gc"
    gen = _cli(
        "data",
        "generate",
        "--out",
        str(data),
        "--neurons",
        str(neurons),
        "--layers",
        str(layers),
        "--inputs",
        "200",
        "--json",
    )
    assert gen.returncode == 0, gen.stderr
    out = tmp_path / "cats.tsv"
    run = _cli(
        "infer", "--data", str(data), "--neurons", str(neurons), "--layers", str(layers), "--out", str(out), "--json"
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["truth_checked"] and result["matches_truth"]
    truth = gc.truth_path(data, neurons, layers).read_text()
    assert out.read_text() == truth and len(result["categories"]) == json.loads(gen.stdout)["categories"]
    bad = _cli("infer", "--data", str(data), "--neurons", "1000", "--layers", str(layers))
    assert bad.returncode == 2 and "--neurons must be one of" in bad.stderr


def test_import_unpacks_an_official_download_and_validates_it(tmp_path: Path) -> None:
    import gzip
    import shutil
    import tarfile

    from backend.sdsinf.data import generate
    from backend.sdsinf.importer import import_download

    made = tmp_path / "made"
    generate(made, 1024, 3, 20, seed=5)
    download = tmp_path / "download"
    download.mkdir()
    with tarfile.open(download / "neuron1024.tar.gz", "w:gz") as tar:
        tar.add(made / "neuron1024", arcname="neuron1024")
    with (
        open(made / "sparse-images-1024.tsv", "rb") as fin,
        gzip.open(download / "sparse-images-1024.tsv.gz", "wb") as fout,
    ):
        shutil.copyfileobj(fin, fout)
    shutil.copy(made / "neuron1024-l3-categories.tsv", download)
    info = import_download(download, tmp_path / "out", 1024)
    assert info["layers"] == 3 and info["inputs"] == 20 and info["truth"] is True
    assert sorted(info["unpacked"]) == [
        "neuron1024-l3-categories.tsv",
        "neuron1024.tar.gz",
        "sparse-images-1024.tsv.gz",
    ]
    # a broken line is named with its file and line
    (tmp_path / "out" / "neuron1024" / "n1024-l2.tsv").write_text("1\t2\n")
    with pytest.raises(Exception, match=r"n1024-l2.tsv:1"):
        import_download(tmp_path / "out", tmp_path / "out", 1024)
    # an archive member that tries to leave the target is refused by tarfile's data filter
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / "neuron1024.tar.gz", "w:gz") as tar:
        info_ = tarfile.TarInfo("../escaped.tsv")
        info_.size = 0
        tar.addfile(info_)
    with pytest.raises(Exception, match="not a readable tar archive"):
        import_download(evil, tmp_path / "out2", 1024)
    assert not (tmp_path / "escaped.tsv").exists()


def test_component_partition_sends_each_row_to_one_worker_and_stays_balanced() -> None:
    from lambda_src.sdsinf.model import radixnet
    from lambda_src.sdsinf.partition import make_partition

    net = radixnet(1024, 8, seed=2)
    for workers in (2, 8):
        row = plans(net.layers, make_partition("row", net.layers, workers))
        comp_owners = make_partition("component", net.layers, workers)
        comp = plans(net.layers, comp_owners)
        assert sum(p.rows_sent for p in comp) < sum(p.rows_sent for p in row) / (workers / 2)
        assert all(np.bincount(o, minlength=workers).max() == 1024 // workers for o in comp_owners)
        for plan in comp:  # a row travels to at most one other worker
            dests: dict[int, set[int]] = {}
            for (_src, dst), rows in plan.sends.items():
                for r in rows:
                    dests.setdefault(int(r), set()).add(dst)
            assert all(len(d) == 1 for d in dests.values())


def test_partition_report_cli(tmp_path: Path) -> None:
    from backend.sdsinf.data import generate

    generate(tmp_path / "gc", 1024, 4, 40, seed=4)
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "sdsinf", "partition", "--data", str(tmp_path / "gc"), "--layers", "4",
         "--workers", "8", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert len(report["row"]["rows_per_layer"]) == 4
    assert report["component"]["rows"] < report["row"]["rows"] / 4
    assert report["component"]["bytes"] < report["row"]["bytes"]


PAYLOADS = sorted((Path(__file__).parent / "fixtures" / "sdsinf_payloads").glob("*.json"))


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.stem)
def test_each_original_payload_is_read_as_the_original_reads_it(path: Path) -> None:
    from backend.sdsinf.runs import read_payload

    payload = read_payload(path)
    variant = path.stem.rsplit("_", 1)[-1]
    assert payload.variant == variant and payload.config.endswith(f"_{variant}")
    assert payload.config == path.stem.replace("_payload", "")  # 1_CONFIG.csv's CONFIG
    assert (payload.neurons, payload.layers, payload.num_data) == (1024, 120, 10000)
    assert payload.total_nworkers == (1 if variant == "serial" else 8)


def test_a_payload_infers_batch_size_times_batches_as_the_original_whatever_num_data_says(tmp_path: Path) -> None:
    # the original's numDataToUse is batchSize x numBatches; skydeck inferred numData and refused a
    # payload whose batches did not cover it. The original's metrics row still says numData.
    from backend.sdsinf.runs import plan_from_payload, read_payload

    doc = json.loads(next(p for p in PAYLOADS if p.stem.endswith("queue")).read_text())
    doc["model_params"].update(numData=10000, batchSize=300, numBatches=2)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    plan = plan_from_payload(path)
    assert (plan.num_data, plan.batch) == (600, 300)
    said = read_payload(path).run_columns()
    assert (said["NUM_DATA"], said["BATCH_SIZE"], said["NUM_BATCHES"]) == ("10000", "300", "2")


@pytest.mark.parametrize(
    "change,words",
    [
        (lambda d: d["model_params"].pop("numData"), "model_params.numData is missing"),
        (lambda d: d["invoc_params"].update(bfr=0), "invoc_params.bfr must be a whole number"),
        (lambda d: d["data_params"]["metrics_loc"].update(filename="1_c1_bogus.csv"), "names no variant"),
    ],
)
def test_a_broken_payload_is_refused_naming_the_field(tmp_path: Path, change, words: str) -> None:  # noqa: ANN001
    from backend.core.errors import ConfigError
    from backend.sdsinf.runs import read_payload

    doc = json.loads(next(p for p in PAYLOADS if p.stem.endswith("queue")).read_text())
    change(doc)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=words):
        read_payload(path)


def test_a_failed_runs_explanation_names_the_cause_before_its_echoes() -> None:
    from lambda_src.sdsinf.diagnosis import WorkerFailure, explain, last_layers

    stall = lambda k, waited: WorkerFailure(k, f"worker {k} waited", 5, tuple(waited))  # noqa: E731
    # worker 3 died after layer 4: the others all waited for it at layer 5
    text = explain(4, [stall(0, [3]), stall(1, [3]), stall(2, [3])], set(), {0: 4, 1: 4, 2: 4, 3: 4})
    assert text.startswith("worker 0003 stopped after layer 4 without reporting"), text
    assert "worker(s) 0000, 0001, 0002 waited at layer 5 for worker(s) 0003" in text
    # a worker that failed with an error of its own is the cause, whoever else stalled
    broken = WorkerFailure(1, "ValueError: layer 7 has 30 edges, the network's shape says 32", 7)
    text = explain(3, [stall(0, [1]), broken], {2}, {})
    assert text.startswith("worker 0001 failed: ValueError"), text
    assert "stopped" not in text
    # a worker still waiting (reported by nobody, waited for by nobody) is not blamed
    text = explain(3, [stall(0, [1])], set(), {1: 2})
    assert "worker 0001 stopped after layer 2" in text and "0002" not in text
    # the worker waited for had finished: its block was lost on the way, and nobody is called dead
    text = explain(3, [stall(0, [1])], {1}, {0: 4, 1: 9, 2: 4})
    assert text.startswith("worker(s) 0001 finished, but blocks they sent never arrived"), text
    assert "stopped" not in text
    # nothing reported at all
    assert explain(2, [], set(), {}).startswith("worker 0000 stopped before its first layer")
    assert last_layers(["r/live/worker-0003/b000-l0004.json", "r/live/worker-0003/b001-l0002.json", "junk"]) == {3: 2}


def test_inference_on_every_core_gives_the_single_process_answer_with_and_without_the_shortcut() -> None:
    from lambda_src.sdsinf.kernel import infer, infer_alive

    net = radixnet(1024, 12, seed=5)
    y = generate_inputs(1024, 1500, seed=6)
    truth = categories(reference(y, net.layers, net.bias)) - 1
    assert np.array_equal(infer(y, net.layers, net.bias).alive(), truth)
    assert np.array_equal(infer(y, net.layers, net.bias, shortcut=False).alive(), truth)
    for processes in (1, 2, 3):
        assert np.array_equal(infer_alive(y, net.layers, net.bias, processes=processes), truth), processes


def test_the_parsed_copy_serves_until_a_file_changes(tmp_path: Path) -> None:
    """`sdsinf infer` keeps the parsed dataset under a digest of the files' contents: a second load
    reads that copy, and a changed weight (same file size) is seen at once, never a stale copy."""
    from backend.sdsinf.data import generate, load_dataset

    data, cache = tmp_path / "gc", tmp_path / "cache"
    generate(data, 1024, 3, 20, seed=5)
    net, y, truth = load_dataset(data, 1024, 3, cache)
    copies = list(cache.glob("*.parsed"))
    assert len(copies) == 1
    again, y_again, truth_again = load_dataset(data, 1024, 3, cache)
    assert all((a != b).nnz == 0 for a, b in zip(net.layers, again.layers, strict=True))
    assert (y != y_again).nnz == 0 and truth is not None and np.array_equal(truth, truth_again)
    assert list(cache.glob("*.parsed")) == copies
    layer = gc.layer_path(data, 1024, 2)
    text = layer.read_text()
    edited = text.replace("0.0625", "0.0626", 1)
    assert len(edited) == len(text)
    layer.write_text(edited)
    changed, _, _ = load_dataset(data, 1024, 3, cache)
    assert np.isclose(changed.layers[1].data, 0.0626).sum() == 1
    assert len(list(cache.glob("*.parsed"))) == 2


def test_run_ids_sort_in_the_order_runs_started_within_one_second() -> None:
    import time

    from lambda_src.sdsinf.direct import new_run_id

    made = []
    for _ in range(20):
        made.append(new_run_id())
        time.sleep(0.003)
    assert sorted(made) == made and len(set(made)) == 20
    assert all(len(i.split("-")[2]) == 6 for i in made)


def _original_ids(bfr: int, nlevels: int, total: int) -> dict[int, list[int]]:
    """The original's numbering, restated from its coordinator and worker: the coordinator (id -1)
    gives child i p_js = total / bfr; a worker at `level` takes id = p_id + p_iter * p_js + 1; above the
    penultimate level it passes p_js = ceil((p_js - 1) / bfr) on, at it its leaves get id + i + 1."""
    import math

    kids: dict[int, list[int]] = {-1: []}

    def worker(p_id: int, p_iter: int, p_js: float, level: int) -> int:
        me = int(p_id + p_iter * p_js + 1)
        kids[me] = []
        if nlevels - level > 1:
            js = math.ceil((p_js - 1) / bfr)
            kids[me] = [worker(me, i, js, level + 1) for i in range(bfr)]
        elif nlevels - level == 1:
            kids[me] = [me + i + 1 for i in range(bfr)]
            for leaf in kids[me]:
                kids[leaf] = []
        return me

    if nlevels == 1:
        kids[-1] = list(range(bfr))
        kids.update({i: [] for i in range(bfr)})
    else:
        kids[-1] = [worker(-1, i, total / bfr, 1) for i in range(bfr)]
    return kids


@pytest.mark.parametrize(("bfr", "nlevels"), [(2, 2), (8, 1), (2, 3), (3, 2), (2, 1)])
def test_workers_are_started_in_the_originals_pre_order_numbering(bfr: int, nlevels: int) -> None:
    from lambda_src.sdsinf.distributed import COORDINATOR, children
    from lambda_src.sdsinf.payload import tree_size

    total = tree_size(bfr, nlevels)
    expected = _original_ids(bfr, nlevels, total)
    got = {k: children(k, bfr, nlevels, total) for k in [COORDINATOR, *range(total)]}
    assert got == expected
    if (bfr, nlevels) == (2, 2):
        assert got[COORDINATOR] == [0, 3] and got[0] == [1, 2] and got[3] == [4, 5]


def test_a_run_smaller_than_its_tree_still_starts_every_worker_once() -> None:
    from lambda_src.sdsinf.distributed import COORDINATOR, children

    for bfr, nlevels, total in [(2, 2, 5), (2, 3, 9), (3, 2, 7), (4, 2, 6)]:
        started = [c for k in [COORDINATOR, *range(total)] for c in children(k, bfr, nlevels, total)]
        assert sorted(started) == list(range(total)), (bfr, nlevels, total)


@pytest.mark.parametrize(("field", "value"), [("nlevels", 1_000_000), ("bfr", 10**12), ("total_nworkers", 10**12)])
def test_a_payloads_tree_is_bounded_before_anything_is_computed_from_it(field: str, value: int) -> None:
    # bfr 2 with nlevels 1,000,000 used to spin: the tree's size was summed before any bound was checked
    from lambda_src.sdsinf.distributed import _shape
    from lambda_src.sdsinf.payload import PayloadError, parse_payload

    doc = {
        "data_params": {"metrics_loc": {"filename": "1_c1_1024n_8w_10000bs_queue.csv"},
                        "weights_loc": {"subfolder": "neuron1024/c1"}},
        "model_params": {"numNeurons": 1024, "numLayers": 120, "numData": 100, "batchSize": 100, "numBatches": 1},
        "invoc_params": {"bfr": 2, "nlevels": 3, "total_nworkers": 14},
    }  # fmt: skip
    doc["invoc_params"][field] = value
    with pytest.raises(PayloadError, match=f"invoc_params.{field}"):
        parse_payload(doc)
    with pytest.raises(PayloadError, match=f"invoc_params.{field}"):
        _shape(doc["invoc_params"])


def test_a_presets_run_is_named_by_what_it_really_runs() -> None:
    # a serial preset run with --variant queue --workers 2 was listed under the serial preset's name
    from backend.sdsinf.runs import config_for

    assert config_for("b1_1024n_1w_10000bs_serial", "queue", 2, None) == "b1_1024n_2w_10000bs_queue"
    assert config_for("c1_1024n_8w_10000bs_queue", "object", 4, 500) == "c1_1024n_4w_500bs_object"
    assert config_for("c1_1024n_8w_10000bs_queue", "queue", 8, None) == "c1_1024n_8w_10000bs_queue"
    assert config_for("my-own-name", "queue", 2, None) == "my-own-name"


def test_a_files_csr_arrays_made_without_scipy_are_the_matrix_scipy_makes() -> None:
    """A layer file read row by row becomes its CSR arrays with numpy alone; any other order, or an entry
    twice, is left to scipy to sort and sum. Either way the matrix is the one scipy builds from the
    triples, down to its dtypes."""
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    rows, cols = np.divmod(np.sort(rng.choice(64 * 64, size=300, replace=False)), 64)
    values = rng.random(300).astype(np.float32)
    ordered = gc.Triples(rows, cols, values, (64, 64))
    shuffle = rng.permutation(300)
    shuffled = gc.Triples(rows[shuffle], cols[shuffle], values[shuffle], (64, 64))
    twice = gc.Triples(np.r_[rows, rows[:5]], np.r_[cols, cols[:5]], np.r_[values, values[:5]], (64, 64))
    assert ordered.csr_parts() is not None
    assert shuffled.csr_parts() is None and twice.csr_parts() is None
    for t in (ordered, shuffled, twice, gc.Triples(rows[:0], cols[:0], values[:0], (64, 64))):
        mine = t.to_csr()
        scipys = sp.csr_matrix((t.values, (t.rows, t.cols)), shape=t.shape, dtype=np.float32)
        assert (mine != scipys).nnz == 0 and mine.nnz == scipys.nnz
        assert np.array_equal(mine.indptr, scipys.indptr) and np.array_equal(mine.indices, scipys.indices)
        assert (mine.dtype, mine.indices.dtype, mine.indptr.dtype) == (
            scipys.dtype,
            scipys.indices.dtype,
            scipys.indptr.dtype,
        )


def test_reading_a_dataset_does_not_import_scipy_before_its_parsing_starts() -> None:
    """A cold `sdsinf infer` forks its parsing processes first and imports scipy while they read: the
    modules that read the files must not pull scipy in."""
    code = (
        "import sys, backend.sdsinf.data, backend.sdsinf.parse, lambda_src.sdsinf.graphchallenge; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "values",
    [np.full(6, 0.0625, np.float32), np.array([1, 2, 3, 4, 5, 6], np.float32), np.array([0.0, -0.0] * 3, np.float32)],
)
def test_a_files_arrays_packed_for_the_pipe_come_back_the_same_to_the_bit(values: np.ndarray) -> None:
    from backend.sdsinf.parse import _packed, _unpacked

    parts = (values, np.array([0, 5, 65535, 1, 2, 3], np.int32), np.array([0, 3, 6], np.int32))
    unpacked = _unpacked(_packed((parts, (2, 65536))))
    assert not isinstance(unpacked, gc.Triples)
    (data, indices, indptr), shape = unpacked
    assert shape == (2, 65536) and data.dtype == np.float32 and indices.dtype == np.int32
    assert data.tobytes() == values.tobytes() and np.array_equal(indices, parts[1]) and indptr is parts[2]
