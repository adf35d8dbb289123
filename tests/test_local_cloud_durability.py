"""Durability as a property: whatever random sequence of calls a user makes, a restart (clean or
kill -9) gives back exactly the state the calls left. The long form runs in benchmarks/."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.durability import run_sequences

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own


def test_random_calls_survive_restarts_and_kill_9(tmp_path: Path) -> None:
    outcome = run_sequences(tmp_path, seeds=[11, 29, 47], length=45, restarts_per_sequence=2)
    assert outcome.restarts == 6 and outcome.operations == 3 * 45
    # every kind of call was tried at least once across the seeds
    assert {"s3_multipart_part", "s3_copy", "sqs_delete", "ddb_update", "cfn_change_set"} <= set(outcome.by_operation)


def test_compaction_after_replay_keeps_the_state_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # compact on every restart: the state after each must still equal the model's
    monkeypatch.setenv("SKYDECK_JOURNAL_COMPACT_AT", "8")
    outcome = run_sequences(tmp_path, seeds=[5, 73], length=60, restarts_per_sequence=3)
    assert outcome.restarts == 6 and outcome.compactions >= 4


def test_a_long_history_of_heartbeats_and_log_uploads_compacts_to_what_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.context import Context
    from backend.core.paths import Home
    from backend.localcloud import control
    from lambda_src.jobs.schema import parse_job

    monkeypatch.setenv("SKYDECK_JOURNAL_COMPACT_AT", "100")
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        store = ctx.jobs.store
        job_id = store.submit(parse_job({"scene": "lego"})).job_id
        store.claim(job_id, "w")
        for i in range(300):  # a long job: heartbeats and its log, over and over
            store.heartbeat(job_id, "w", {"iteration": i})
            if i % 10 == 0:
                ctx.clients.client("s3").put_object(
                    Bucket=ctx.scenes.bucket, Key=f"results/{job_id}/job.log", Body=f"line {i}\n".encode() * (i + 1)
                )
        # a crash leaves the whole history: the next start replays it, then compacts
        os.kill(control.status(home).state["pid"], signal.SIGKILL)
        time.sleep(0.5)
        first = control.up(home, workers=0).state["restored"]
        assert first["compacted"]["before"] > 300 and first["compacted"]["after"] < first["compacted"]["before"] / 2
        control.down(home)
        second = control.up(home, workers=0).state["restored"]
        assert second["replayed"] == first["compacted"]["after"]
        ctx = Context.create(None, home)
        job = ctx.jobs.get(job_id)
        assert job.state == "RUNNING" and job.progress.iteration == 299
        log = ctx.scenes.read_result(job_id, "job.log").decode()
        assert log.startswith("line 290") and log.count("\n") == 291
    finally:
        control.down(home)


def test_a_clean_stop_leaves_a_compacted_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.context import Context
    from backend.core.paths import Home
    from backend.localcloud import control
    from backend.localcloud.journal import Journal

    monkeypatch.setenv("SKYDECK_JOURNAL_COMPACT_AT", "50")
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        s3 = Context.create(None, home).clients.client("s3")
        s3.create_bucket(Bucket="overwritten")
        for i in range(120):
            s3.put_object(Bucket="overwritten", Key="k", Body=str(i).encode())
        control.down(home)  # graceful: the server compacts before it exits
        journal = Journal(home.local_journal)
        kept = journal.count()["requests"]
        journal.close()
        assert kept < 10
        control.up(home, workers=0)
        s3 = Context.create(None, home).clients.client("s3")
        assert s3.get_object(Bucket="overwritten", Key="k")["Body"].read() == b"119"
    finally:
        control.down(home)


def test_objects_removed_by_a_batch_delete_leave_the_journal_and_size_alone_triggers_it(tmp_path: Path) -> None:
    # an hour of SDS-Inf runs: 1,755 records and 144 MB, never compacted (under 5,000 records), and a run's
    # partials and live files, once removed with DeleteObjects, still replayed at every start
    from backend.context import Context
    from backend.core.paths import Home
    from backend.localcloud import control
    from backend.localcloud.journal import Journal

    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        s3 = Context.create(None, home).clients.client("s3")
        s3.create_bucket(Bucket="partials")
        body = os.urandom(1024 * 1024)
        for i in range(40):  # 40 MB in 40 records: past the size at which a journal is compacted
            s3.put_object(Bucket="partials", Key=f"run-1/part-{i}", Body=body)
        s3.put_object(Bucket="partials", Key="kept", Body=b"stays")
        batch = [{"Key": f"run-1/part-{i}"} for i in range(40)]
        s3.delete_objects(Bucket="partials", Delete={"Objects": batch, "Quiet": True})
        control.down(home)  # a clean stop compacts
        journal = Journal(home.local_journal)
        kept = journal.count()["requests"]
        journal.close()
        assert kept <= 4, kept  # the bucket, the kept object and the batch delete
        restored = control.up(home, workers=0).state["restored"]
        assert restored["replayed"] == kept
        s3 = Context.create(None, home).clients.client("s3")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="partials").get("Contents", [])] == ["kept"]
    finally:
        control.down(home)
