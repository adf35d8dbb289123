"""The jobs table's item as a dataclass: its item form is the table's, key for key, at every end."""

from __future__ import annotations

import json

import pytest

from lambda_src.jobs.job_table import from_dynamo_item, to_dynamo
from lambda_src.jobs.record import JobProgress, JobRecord, JobRecordPage, JobResult
from lambda_src.jobs.schema import JobValidationError, parse_job

# a finished job as the executor leaves it, with the original's sent command and a key this version
# does not know (a newer executor's)
FINISHED = {
    "sent": {"command": ["launch_training_job.sh", "lego", "0", "lego", "-c"], "config": {"lr_sigma": 30}},
    "job_id": "3f1c9f1e-2a0b-4c55-9a43-1d2f3e4a5b6c",
    "kind": "job",
    "state": "SUCCEEDED",
    "created_at": 1764800000.25,
    "updated_at": 1764800190.5,
    "attempts": 2,
    "name": "lego",
    "scene": "lego",
    "engine": "torch",
    "config": {"lr_sigma": 30.0, "reso": "[[128, 128, 128]]"},
    "resources": {"gpus": 1, "timeout_minutes": 120},
    "worker": "i-0abc:1234",
    "started_at": 1764800010.0,
    "heartbeat_at": 1764800180.75,
    "finished_at": 1764800190.5,
    "progress": {"iteration": 12800, "psnr": 31.2, "stage": "writing results"},
    "result": {"psnr": 31.4, "ssim": 0.95, "phases_s": {"train": 150.5}},
    "note": "executor i-0old lost: no heartbeat for 301s",
    "gpu_memory_peak_mb": 10240,
}


def test_a_record_reads_as_attributes_and_writes_back_the_same_item() -> None:
    record = JobRecord.from_item(FINISHED)
    assert record.state == "SUCCEEDED" and record.attempts == 2 and record.worker == "i-0abc:1234"
    assert record.result == JobResult(psnr=31.4, ssim=0.95, phases_s={"train": 150.5})
    assert record.progress is not None and record.progress.iteration == 12800 and record.progress.stage
    assert record.extra == {"gpu_memory_peak_mb": 10240}  # kept as read, never dropped
    assert record.ended and record.cancel_requested is None and record.error is None
    assert record.to_item() == FINISHED
    # and through DynamoDB's form, as the table stores it
    stored = {k: to_dynamo(v) for k, v in record.to_item().items()}
    assert JobRecord.from_item(from_dynamo_item(stored)) == record


def test_unset_keys_stay_absent_and_a_replayed_answer_says_so() -> None:
    queued = {"job_id": "a" * 8, "kind": "job", "state": "QUEUED", "created_at": 1.0, "updated_at": 1.0,
              "attempts": 0, "name": "n", "scene": "s", "engine": "auto", "config": {}, "resources": {}}  # fmt: skip
    record = JobRecord.from_item(queued)
    item = record.to_item()
    assert item == queued and "worker" not in item and "error" not in item and json.loads(json.dumps(item)) == item
    assert record.as_replayed().to_item() == {**queued, "replayed": True}
    assert not record.ended


def test_the_spec_is_read_back_as_it_was_submitted() -> None:
    spec = parse_job({"name": "val", "scene": "lego", "checkpoint": FINISHED["job_id"], "engine": "torch"})
    item = {"job_id": "b" * 8, "state": "QUEUED", **{k: v for k, v in spec.to_dict().items() if v is not None}}
    assert JobRecord.from_item(item).spec() == spec
    broken = JobRecord.from_item({**item, "config": {"lr_sigma": "fast"}})
    with pytest.raises(JobValidationError, match="lr_sigma"):
        broken.spec()


def test_an_item_without_its_key_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="job_id"):
        JobRecord.from_item({"state": "QUEUED"})
    with pytest.raises(ValueError, match="state"):
        JobRecord.from_item({"job_id": "x", "state": None})


def test_a_page_keeps_the_api_answer_shape() -> None:
    page = JobRecordPage([JobRecord.from_item(FINISHED)], "tok")
    assert page.to_dict() == {"items": [FINISHED], "next_token": "tok"}


def test_progress_and_result_are_typed_and_keep_what_an_engine_adds() -> None:
    # svox2's engine reports epoch and batch; a later engine may report a key this version lacks
    reported = {"epoch": 3, "psnr_train": 24.5, "batch": 120, "batches": 400, "gpu_util": 0.93}
    progress = JobProgress.from_dict(reported)
    assert progress.epoch == 3 and progress.batches == 400 and progress.iteration is None
    assert progress.extra == {"gpu_util": 0.93} and progress.to_dict() == reported
    finished = {"engine": "svox2", "psnr": 30.1, "ssim": 0.94, "lpips": 0.05, "phases_s": {"train": 3.5},
                "notes": ["n"], "artifacts": "s3://b/results/j/", "epoch": 9}  # fmt: skip
    result = JobResult.from_dict(finished)
    assert (result.engine, result.lpips, result.notes, result.extra) == ("svox2", 0.05, ["n"], {"epoch": 9})
    assert result.to_dict() == finished


def test_a_diverged_loss_is_stored_as_unknown_and_the_heartbeat_still_writes() -> None:
    # DynamoDB has no NaN: the serializer used to refuse the whole progress update, so a job whose loss
    # went NaN stopped reporting (and its heartbeat with it).
    stored = to_dynamo({"iteration": 40, "loss": float("nan"), "psnr": float("inf"), "lr": 0.5})
    progress = JobProgress.from_dict(from_dynamo_item({"p": stored})["p"])
    assert progress.iteration == 40 and progress.loss is None and progress.to_dict() == {"iteration": 40, "lr": 0.5}


def test_a_number_dynamodb_answers_as_nan_reads_as_nan_not_a_crash() -> None:
    item = from_dynamo_item({"x": {"N": "NaN"}, "y": {"N": "3"}, "z": {"N": "2.5"}})
    assert item["x"] != item["x"] and item["y"] == 3 and item["z"] == 2.5


def test_the_attribute_codec_writes_and_reads_what_boto3s_serializer_does() -> None:
    # the record's own codec stands in for boto3.dynamodb.types (whose import is all of boto3): what
    # either writes must be the same item, and read back the same
    from decimal import Decimal
    from pathlib import Path

    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    from lambda_src.jobs.attribute_values import from_dynamo

    values = [
        "lego", "", 0, -7, 10**37, 0.5, 1e-07, 3.141592653589793, 9.5e125, 1e-130, True, False, None, b"\x00\xff",
        [1, "a", [None]], {"reso": "[[128, 128, 128]]", "lr": 0.01, "nested": {"k": [1.5, 2]}}, {"b", "a"},
    ]  # fmt: skip
    serializer, deserializer = TypeSerializer(), TypeDeserializer()
    for value in values:
        theirs = serializer.serialize(_as_boto3_takes_it(value, Decimal))
        ours = to_dynamo(value)
        if "SS" in theirs:  # a set has no order
            assert sorted(ours["SS"]) == sorted(theirs["SS"])
            continue
        assert ours == theirs, value
        assert from_dynamo(theirs) == from_dynamo(ours)
        assert deserializer.deserialize(ours) == deserializer.deserialize(theirs)
    with pytest.raises(ValueError, match="38"):
        to_dynamo(10**40)
    with pytest.raises(ValueError, match="outside"):
        to_dynamo(Decimal("1E+130"))
    # a float DynamoDB cannot hold is unknown, as NaN is: a diverging loss must not stop the heartbeat
    assert to_dynamo({"loss": 2.5e300, "tiny": 1e-200}) == {"M": {"loss": {"NULL": True}, "tiny": {"NULL": True}}}
    with pytest.raises(TypeError, match="PosixPath"):
        to_dynamo(Path("x"))


def _as_boto3_takes_it(value: object, decimal: type) -> object:
    if isinstance(value, float):
        return decimal(repr(value))
    if isinstance(value, dict):
        return {k: _as_boto3_takes_it(v, decimal) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_boto3_takes_it(v, decimal) for v in value]
    return value
