"""SQS sends and deletes are journaled before they are applied: one the journal cannot keep is a 503
and is not made. (It used to be a 500 with the message already visible: each client retry added one.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from backend.localcloud import fast_sqs

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own


class Flaky:
    """A journal listener whose disk refuses the writes named in `failing`."""

    def __init__(self) -> None:
        self.failing: set[str] = set()

    def _maybe(self, what: str) -> None:
        if what in self.failing:
            raise sqlite3.OperationalError("attempt to write a readonly database")

    def on_send(self, queue: Any, message: Any) -> None:
        self._maybe("send")

    def on_receive(self, queue: Any, message: Any) -> None:
        pass

    def on_delete(self, queue: Any, message: Any) -> None:
        self._maybe("delete")

    def on_move(self, source: Any, target: Any, message: Any) -> None:
        pass

    def on_purge(self, queue: Any) -> None:
        pass


@pytest.fixture
def journal() -> Iterator[Flaky]:
    flaky = Flaky()
    with mock_aws():
        fast_sqs.install(flaky)
        yield flaky
    fast_sqs.install(None)


def test_a_send_the_journal_cannot_keep_is_a_503_and_never_visible(journal: Flaky) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1", config=Config(retries={"max_attempts": 3, "mode": "standard"}))
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    journal.failing.add("send")
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="job-1")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert "nothing was changed" in str(refused.value)
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    journal.failing.clear()
    sqs.send_message(QueueUrl=url, MessageBody="job-1")
    [got] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, VisibilityTimeout=0)["Messages"]
    journal.failing.add("delete")
    with pytest.raises(ClientError) as refused:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # not deleted in memory either: the message is still there for a retry (or another consumer)
    assert len(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])) == 1
