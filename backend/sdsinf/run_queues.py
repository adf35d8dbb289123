"""The Queue variant's per-run queues: one per worker, subscribed to the stack's topic with a filter."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.core.context import Context


class RunQueues:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def out(self) -> dict[str, str]:
        return self.ctx.stacks.outputs("sdsinf")

    def prefix(self, run_id: str) -> str:
        return f"{self.out['QueuePrefix']}-{run_id[-6:]}-"

    def make(self, run_id: str, workers: int) -> list[str]:
        """One queue per worker for this run, subscribed to the topic with a filter on run and target.

        Fresh queues per run: a rerun can never receive a failed run's messages."""
        sqs, sns = self.ctx.clients.client("sqs"), self.ctx.clients.client("sns")
        topic = self.out["QueueTopicArn"]
        urls = []
        for k in range(workers):
            name = f"{self.prefix(run_id)}w{k:04d}"
            url = sqs.create_queue(
                QueueName=name, Attributes={"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "3600"}
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
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                    }
                ],
            }
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={
                    "FilterPolicy": json.dumps({"run": [run_id], "target": [str(k)]}),
                    "RawMessageDelivery": "true",
                },
            )
            urls.append(url)
        return urls

    def cleanup(self, run_id: str) -> int:
        """Remove a Queue run's subscriptions and queues (after it ends, either way). Returns queues removed."""
        out = self.out
        if "QueueTopicArn" not in out:
            return 0
        sqs, sns = self.ctx.clients.client("sqs"), self.ctx.clients.client("sns")
        prefix = self.prefix(run_id)
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=out["QueueTopicArn"]):
            for sub in page.get("Subscriptions", []):
                if sub.get("Endpoint", "").rsplit(":", 1)[-1].startswith(prefix):
                    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        for url in urls:
            sqs.delete_queue(QueueUrl=url)
        return len(urls)
