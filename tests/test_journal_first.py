"""The gateway journals a change before moto applies it: a change the journal cannot keep is not made."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from backend.localcloud.gateway import Gateway
from backend.localcloud.journal import Journal
from backend.localcloud.lambda_runtime import LambdaRuntime

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own

AUTH = "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    journal = Journal(tmp_path / "journal.sqlite")
    runtime = LambdaRuntime(tmp_path / "lambda", {}, tmp_path / "logs")
    gw = Gateway(DomainDispatcherApplication(create_backend_app), journal, runtime, "us-east-1")
    Client(gw).post("/moto-api/reset")  # moto's backends live in this process: start from nothing
    gw.recording = True
    yield gw
    runtime.shutdown()
    journal.close()


def _put(client: Client, key: str, size: int, bucket: str = "journal-first") -> int:
    return client.put(f"/{bucket}/{key}", data=b"x" * size, headers={"Authorization": AUTH}).status_code


def test_a_full_journal_refuses_the_change_and_applies_nothing(gateway: Gateway) -> None:
    client = Client(gateway)
    assert client.put("/journal-first", headers={"Authorization": AUTH}).status_code == 200
    db = gateway.journal._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 2}")  # as good as a full disk
    answers = [_put(client, f"k{i}", 100_000) for i in range(20)]
    assert answers == [507] * 20  # the disk is full: said as such (InsufficientStorage), not retried
    listed = client.get("/journal-first", headers={"Authorization": AUTH}).get_data()
    assert b"<Key>" not in listed, "a change the journal refused was applied anyway"
    db.execute("PRAGMA max_page_count = 1073741823")
    assert _put(client, "after", 10) == 200
    assert [r.path for r in gateway.journal.requests()] == ["/journal-first", "/journal-first/after"]


def test_a_refused_change_leaves_no_record(gateway: Gateway) -> None:
    client = Client(gateway)
    # no such bucket: moto refuses, and the journal keeps nothing to replay
    assert _put(client, "k", 5, bucket="no-such-bucket-here") == 404
    assert list(gateway.journal.requests()) == []
    assert gateway.journal.count()["requests"] == 0


def test_the_journal_is_on_disk_before_a_change_is_answered(tmp_path: Path) -> None:
    # WAL with synchronous=NORMAL syncs only at checkpoints: an answered change could be lost to a
    # power cut. FULL syncs the log at every commit, before the gateway lets moto apply the change.
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        journal.close()


def test_the_journal_maps_no_shared_memory_file(tmp_path: Path) -> None:
    # an unwritable or unextendable -shm file killed the server with SIGBUS: there is none to map
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        seq = journal.begin("PUT", "/b/k", "", {}, b"body")
        journal.settle(seq, b"")
        assert journal._db.execute("PRAGMA locking_mode").fetchone()[0] == "exclusive"
        assert not (tmp_path / "journal.sqlite-shm").exists()
        assert [r.path for r in journal.requests()] == ["/b/k"]
    finally:
        journal.close()


def test_a_journal_held_open_elsewhere_is_named_as_in_use_not_damaged(tmp_path: Path) -> None:
    from backend.localcloud.journal import JournalInUse

    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    other = sqlite3.connect(path)  # someone looking at it with a sqlite3 shell
    try:
        other.execute("BEGIN")
        other.execute("SELECT COUNT(*) FROM requests").fetchone()
        with pytest.raises(JournalInUse, match="open in another program"):
            Journal(path)
    finally:
        other.close()


@pytest.mark.parametrize(
    ("body", "action", "journaled"),
    [
        (b"Action=SendMessage&QueueUrl=http%3A%2F%2Fx&MessageBody=hi", "SendMessage", False),  # kept as a row
        (b"Version=2010-03-31&TopicArn=arn%3Aaws&Action=PublishBatch&Entry.1.Message=%5Bb%27%5Cx00%27%5D",
         "PublishBatch", False),
        (b"MessageBody=Action%3DDeleteQueue&Action=ReceiveMessage", "ReceiveMessage", False),  # a value never counts
        (b"Action=CreateQueue&QueueName=work", "CreateQueue", True),
        (b"QueueUrl=x", "Post", True),
    ],
)  # fmt: skip
def test_a_form_request_is_told_by_its_action_field_alone(body: bytes, action: str, journaled: bool) -> None:
    from backend.localcloud.journal import is_journaled, request_action

    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert request_action("POST", "/", headers, body) == action
    assert is_journaled("POST", "/", headers, body) is journaled
