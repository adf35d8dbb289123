"""Per-input results as the original's workers take and collate them (SDS-Inf-Code: SpFF's
`H.argmax(axis=0)` / `H.max(axis=0)` after a batch, and worker 0's handle_stats_string)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from lambda_src.sdsinf.sample_results import Maxima, collate, log_block, to_csv


def original_worker_maxima(h_full: np.ndarray, mine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A worker's H holds only its own neurons' rows (the rest zero); scipy's argmax and max of it."""
    h = np.zeros_like(h_full)
    h[mine] = h_full[mine]
    hs = sp.csr_matrix(h)
    rows = np.ravel(hs.argmax(axis=0))
    vals = np.zeros(h.shape[1], dtype=np.float32)
    m = hs.max(axis=0).tocoo()
    vals[m.col] += m.data
    return rows, vals


def original_collate(per_worker: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    n = per_worker[0][0].size
    all_rows, all_vals, all_ids = np.zeros(n, dtype=int), np.zeros(n, dtype=np.float32), np.zeros(n, dtype=int)
    for source, (rows, vals) in enumerate(per_worker):
        for i in range(rows.size):
            if vals[i] > all_vals[i]:
                all_rows[i], all_vals[i], all_ids[i] = rows[i], vals[i], source
    return all_rows, all_vals, all_ids


def test_each_workers_maxima_and_worker_0s_collation_are_the_originals() -> None:
    rng = np.random.default_rng(2)
    neurons, inputs, workers = 24, 40, 3
    h = np.where(rng.random((neurons, inputs)) < 0.2, rng.choice([4.0, 32.0, 7.5], size=(neurons, inputs)), 0.0)
    h = h.astype(np.float32)
    h[:, 5] = 0.0  # a dead input: neuron 0, 0.0
    owners = rng.integers(0, workers, size=neurons)  # owners need not be contiguous
    ours, theirs = [], []
    for k in range(workers):
        mine = np.flatnonzero(owners == k)
        ours.append(Maxima.of_block(h[mine].T, mine))
        theirs.append(original_worker_maxima(h, mine))
        assert ours[-1].rows.tolist() == theirs[-1][0].tolist() and ours[-1].vals.tolist() == theirs[-1][1].tolist()
    got, want = collate(ours), original_collate(theirs)
    assert got.rows.tolist() == want[0].tolist() and got.vals.tolist() == want[1].tolist()
    assert got.workers is not None and got.workers.tolist() == want[2].tolist()
    lines = to_csv(got).splitlines()
    assert lines[0] == "SAMPLE,MAX_ROW,MAX_VAL,WORKER_ID" and lines[6] == "5,0,0,0" and len(lines) == inputs + 1
    assert "OVERALL INFERENCE RESULTS" in log_block(got) and "(0, 5)" not in log_block(got)


def test_the_published_c1_run_is_kept_and_a_folder_or_a_missing_file_names_the_way_out(tmp_path) -> None:  # noqa: ANN001
    # the README's compare line named a file no fresh machine has; the console offered `.`, a folder
    from backend.core.errors import ConfigError
    from backend.sdsinf.published import C1_QUEUE
    from backend.sdsinf.results import read_master

    row = read_master(Path("published"))
    assert row == C1_QUEUE and row["METRIC_ELAPSED_TIME_COMMUNICATION"] == "484.44894"
    for where in (tmp_path, tmp_path / "master_metrics_nosuch.csv"):
        with pytest.raises(ConfigError, match="`published`") as refused:
            read_master(where)
        assert "--with" not in str(refused.value)  # the console shows it too: no CLI flag in it
