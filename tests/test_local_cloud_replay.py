"""Restarting the local cloud after work that made the server mint ids (multipart uploads, stacks)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from backend.context import Context
from backend.core.errors import SkydeckError
from backend.core.paths import Home
from backend.localcloud import control
from backend.localcloud.minted_ids import IdMap, minted
from gpu_executor.engines import builtin_engines
from gpu_executor.executor import Executor, ExecutorConfig
from lambda_src.jobs.schema import parse_job
from tests.test_cli import run

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # boto3's upload_file default


def test_a_finished_job_with_a_multipart_checkpoint_survives_a_restart(tmp_path: Path) -> None:
    from gpu_executor.plenoxels.scene import make_scene

    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        make_scene("demo", tmp_path / "scene", size=24, views=6, test_views=1)
        ctx.scenes.push(tmp_path / "scene", "demo")
        config = {"reso": "[[96, 96, 96]]", "n_iters": 2, "batch_size": 500, "lambda_tv": 0.0, "lambda_tv_sh": 0.0}
        store = ctx.jobs.store
        job_id = store.submit(parse_job({"scene": "demo", "engine": "torch", "config": config})).job_id
        Executor(
            store, builtin_engines(), ExecutorConfig(wait_s=1), storage=ctx.scenes.storage(tmp_path / "cache")
        ).run(once=True)
        assert store.get(job_id).state == "SUCCEEDED"
        ckpt = next(o for o in ctx.scenes.results(job_id) if o["name"] == "ckpt.npz")
        assert ckpt["size"] > MULTIPART_THRESHOLD, "the checkpoint must go up as a multipart upload"

        control.down(home)
        restarted = control.up(home, workers=0)
        assert restarted.state["restored"]["failed"] == 0
        fetched = run(home.root, "jobs", "fetch", job_id, "--out", str(tmp_path / "out"))
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "out" / "ckpt.npz").stat().st_size == ckpt["size"]
    finally:
        control.down(home)


def test_a_journal_without_answers_or_with_a_broken_record_still_starts(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        s3 = Context.create(None, home).clients.client("s3")
        s3.create_bucket(Bucket="old-journal")
        upload = s3.create_multipart_upload(Bucket="old-journal", Key="big")["UploadId"]
        parts = []
        for n, size in ((1, 5 * 1024 * 1024), (2, 100)):
            etag = s3.upload_part(Bucket="old-journal", Key="big", UploadId=upload, PartNumber=n, Body=b"x" * size)
            parts.append({"ETag": etag["ETag"], "PartNumber": n})
        s3.complete_multipart_upload(Bucket="old-journal", Key="big", UploadId=upload, MultipartUpload={"Parts": parts})
        s3.put_object(Bucket="old-journal", Key="after", Body=b"still here")
        control.down(home)
        with closing(sqlite3.connect(home.local_journal)) as db, db:
            # as journals written before answers (and checksums) were kept
            db.execute("UPDATE requests SET response = NULL, checksum = NULL")
            db.execute(
                "INSERT INTO requests (method, path, query, headers, body) VALUES "
                "('PUT', '/old-journal/ghost', 'partNumber=1&uploadId=nosuchupload', '{}', x'00')"
            )
            db.execute(
                "INSERT INTO requests (method, path, query, headers, body) VALUES "
                "('PUT', '/old-journal/last', '', '{}', CAST('written after the bad one' AS BLOB))"
            )
        restarted = control.up(home, workers=0)
        restored = restarted.state["restored"]
        assert restored["failed"] == 1
        [lost] = restored["not_restored"]
        assert lost["target"] == "PUT /old-journal/ghost" and "nosuchupload" in lost["reason"]
        s3 = Context.create(None, home).clients.client("s3")
        assert s3.head_object(Bucket="old-journal", Key="big")["ContentLength"] == 5 * 1024 * 1024 + 100
        assert s3.get_object(Bucket="old-journal", Key="last")["Body"].read() == b"written after the bad one"
        shown = run(home.root, "local", "status")
        assert shown.returncode == 0
        assert "1 recorded change was not restored" in shown.stdout and "PUT /old-journal/ghost" in shown.stdout
        as_json = json.loads(run(home.root, "local", "status", "--json").stdout)
        assert as_json["restored"]["not_restored"][0]["seq"] == lost["seq"]
    finally:
        control.down(home)


def test_copy_keeps_its_source_and_metadata_across_a_restart(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        s3 = Context.create(None, home).clients.client("s3")
        s3.create_bucket(Bucket="copies")
        s3.put_object(Bucket="copies", Key="a", Body=b"original", Metadata={"owner": "ops"}, ContentType="text/x-a")
        s3.copy_object(Bucket="copies", Key="b", CopySource={"Bucket": "copies", "Key": "a"})
        control.down(home)
        control.up(home, workers=0)
        s3 = Context.create(None, home).clients.client("s3")
        copied = s3.get_object(Bucket="copies", Key="b")
        assert copied["Body"].read() == b"original"
        assert copied["Metadata"] == {"owner": "ops"} and copied["ContentType"] == "text/x-a"
    finally:
        control.down(home)


@pytest.mark.parametrize(
    "recorded,replayed,expected",
    [
        (
            b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>OLDid12345</UploadId>"
            b"</InitiateMultipartUploadResult>",
            b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>NEWid67890</UploadId>"
            b"</InitiateMultipartUploadResult>",
            {"OLDid12345": "NEWid67890"},
        ),
        (
            b'{"Id": "arn:aws:cfn:us-east-1:1:changeSet/x/aaaa-1111", "RequestId": "r-1111111111",'
            b' "CreationTime": "2026-01-01T00:00:00Z"}',
            b'{"Id": "arn:aws:cfn:us-east-1:1:changeSet/x/bbbb-2222", "RequestId": "r-2222222222",'
            b' "CreationTime": "2026-01-02T00:00:00Z"}',
            {"arn:aws:cfn:us-east-1:1:changeSet/x/aaaa-1111": "arn:aws:cfn:us-east-1:1:changeSet/x/bbbb-2222"},
        ),
        (b"", b"<x/>", {}),
        (b"not a document", b"also not one", {}),
    ],
)
def test_minted_ids_are_told_apart_from_request_ids_and_times(
    recorded: bytes, replayed: bytes, expected: dict[str, str]
) -> None:
    assert minted(recorded, replayed) == expected


def test_the_id_map_rewrites_raw_and_encoded_forms_but_never_object_data() -> None:
    ids = IdMap()
    ids.learn({"arn:aws:x:1:stack/s/old-1": "arn:aws:x:1:stack/s/new-2"})
    assert ids.rewrite_text("StackName=arn%3Aaws%3Ax%3A1%3Astack%2Fs%2Fold-1&Action=DeleteStack") == (
        "StackName=arn%3Aaws%3Ax%3A1%3Astack%2Fs%2Fnew-2&Action=DeleteStack"
    )
    assert ids.rewrite_body(b'{"StackId": "arn:aws:x:1:stack/s/old-1"}', "application/x-amz-json-1.0") == (
        b'{"StackId": "arn:aws:x:1:stack/s/new-2"}'
    )
    data = b"arn:aws:x:1:stack/s/old-1"
    assert ids.rewrite_body(data, "binary/octet-stream") == data


def test_a_damaged_journal_says_so_and_local_repair_keeps_what_reads(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    s3 = Context.create(None, home).clients.client("s3")
    s3.create_bucket(Bucket="before-damage")
    control.down(home)
    home.local_journal.write_bytes(b"this is not a journal" * 100)
    with pytest.raises(SkydeckError, match="is damaged.*skydeck local repair"):
        control.up(home, workers=0)
    refused = run(home.root, "local", "repair")  # no terminal to confirm on
    assert refused.returncode == 2 and "--yes" in refused.stderr
    repaired = run(home.root, "local", "repair", "--yes", "--json")
    assert repaired.returncode == 0, repaired.stderr
    report = json.loads(repaired.stdout)
    assert report["requests_kept"] == 0 and Path(report["set_aside"]).exists()
    assert control.up(home, workers=0).running  # starts again, empty
    control.down(home)


def test_local_repair_copies_every_row_of_a_readable_journal(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        s3 = Context.create(None, home).clients.client("s3")
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="k", Body=b"still here")
        control.down(home)
        report = json.loads(run(home.root, "local", "repair", "--yes", "--json").stdout)
        assert report["requests_kept"] >= 2 and report["stopped_at"] == "end of journal"
        control.up(home, workers=0)
        s3 = Context.create(None, home).clients.client("s3")
        assert s3.get_object(Bucket="kept", Key="k")["Body"].read() == b"still here"
    finally:
        control.down(home)


def test_a_damaged_record_stops_the_start_naming_it_and_repair_keeps_what_came_before(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    s3 = Context.create(None, home).clients.client("s3")
    s3.create_bucket(Bucket="kept")
    s3.put_object(Bucket="kept", Key="before", Body=b"intact")
    s3.put_object(Bucket="kept", Key="job.log", Body=b"the job's own log")
    s3.put_object(Bucket="kept", Key="after", Body=b"written later")
    control.down(home)
    db = sqlite3.connect(home.local_journal)
    (seq,) = db.execute("SELECT seq FROM requests WHERE path LIKE '%job.log'").fetchone()
    # bytes changed on disk inside one record: SQLite reads the file fine, the record is wrong
    db.execute("UPDATE requests SET body = ? WHERE seq = ?", (b"random bytes " * 3, seq))
    db.commit()
    db.close()
    with pytest.raises(SkydeckError, match=rf"record {seq} fails its checksum.*skydeck local repair"):
        control.up(home, workers=0)
    report = json.loads(run(home.root, "local", "repair", "--yes", "--json").stdout)
    assert report["stopped_at"] == f"record {seq} fails its checksum (its request changed on disk)"
    with _s3_of_a_running_cloud(home) as s3:
        assert s3.get_object(Bucket="kept", Key="before")["Body"].read() == b"intact"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="kept").get("Contents", [])]
        assert keys == ["before"], "a record after the damaged one was replayed without it"


def test_the_journal_keeps_no_signature_or_session_token(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    with _s3_of_a_running_cloud(home) as s3:
        s3.create_bucket(Bucket="signed")
    headers = [json.loads(h) for (h,) in sqlite3.connect(home.local_journal).execute("SELECT headers FROM requests")]
    auth = [h["authorization"] for h in headers if "authorization" in h]
    assert auth and all("Credential=" in a and "Signature=" not in a for a in auth)
    assert not any("x-amz-security-token" in h for h in headers)


@contextmanager
def _s3_of_a_running_cloud(home: Home) -> Iterator[Any]:
    """A local cloud of the home's own, up for the block, and an S3 client on it."""
    control.up(home, workers=0)
    try:
        yield Context.create(None, home).clients.client("s3")
    finally:
        control.down(home)
