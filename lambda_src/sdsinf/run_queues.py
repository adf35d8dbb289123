"""The Queue variant's per-run queues: one per worker, subscribed to the stack's data topics with a
filter on the run and the target, and to its coordination topic with a filter on the run. Fresh
queues per run: a rerun can never receive a failed run's messages.

Made by whoever starts a run (`skydeck sdsinf run`, or the coordinator when it is invoked with an
original payload) and removed when it ends (by the client that follows it, or by worker 0 for a run
nobody follows).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any


def queue_prefix(stack_prefix: str, run_id: str) -> str:
    return f"{stack_prefix}-{run_id[-6:]}-"


def make_queues(
    sqs: Any, sns: Any, topics: list[str], coordination_topic: str, prefix: str, run_id: str, workers: int
) -> list[str]:
    """One queue per worker, subscribed to every data topic for the blocks sent to that worker and to
    the coordination topic for the run's batch-end messages (the original's subscriptions)."""
    urls = []
    for k in range(workers):
        url = sqs.create_queue(
            QueueName=f"{prefix}w{k:04d}",
            Attributes={"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "3600"},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": [*topics, coordination_topic]}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        filters = [(t, {"run": [run_id], "target": [str(k)]}) for t in topics]
        for topic, accept in [*filters, (coordination_topic, {"run": [run_id]})]:
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"FilterPolicy": json.dumps(accept), "RawMessageDelivery": "true"},
            )
        urls.append(url)
    return urls


def remove_queues(sqs: Any, sns: Any, topics: list[str], prefix: str) -> int:
    """The run's subscriptions (on every topic named) and queues, gone. Returns the queues removed."""
    for topic in topics:
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
            for sub in page.get("Subscriptions", []):
                if sub.get("Endpoint", "").rsplit(":", 1)[-1].startswith(prefix):
                    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    for url in urls:
        # removed meanwhile by the other party that may remove them (the follower or worker 0): done
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=url)
    return len(urls)
