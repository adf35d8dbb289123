"""How a run's traffic is spread, as the original spreads it: over `Shards` data topics (Queue: worker
K publishes to topic K mod Shards, every queue listens to all of them) plus one coordination topic
for the batch-end messages, and over `Shards` intermediate buckets (Object: a block for worker K is
written to bucket K mod Shards, so each worker lists only its own bucket) beside a base bucket for
the batch-end marks. The stack makes them (parameter `Shards`, default 10, as the original's 10);
their names follow from the base names, so a run's event and a function's environment carry only
the base names and the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def shard_of(worker: int, shards: int) -> int:
    return worker % shards


@dataclass(frozen=True)
class Shards:
    intermediate_bucket: str  # the base bucket; shard K is "<base>-K"
    block_topic_prefix: str  # shard K's topic ARN is "<prefix>K"
    coordination_topic: str
    count: int

    @property
    def buckets(self) -> list[str]:
        return [f"{self.intermediate_bucket}-{k}" for k in range(self.count)]

    @property
    def topics(self) -> list[str]:
        return [f"{self.block_topic_prefix}{k}" for k in range(self.count)]

    @classmethod
    def from_outputs(cls, out: Mapping[str, str]) -> Shards:
        """From the deployed stack's outputs (a stack deployed before the shards has no `Shards`)."""
        return cls(
            out["IntermediateBucket"], out["BlockTopicArnPrefix"], out["CoordinationTopicArn"], int(out["Shards"])
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Shards:
        """From a coordinator function's environment (the stack sets SDSINF_*)."""
        return cls(
            env.get("SDSINF_INTERMEDIATE_BUCKET", ""),
            env.get("SDSINF_BLOCK_TOPIC_PREFIX", ""),
            env.get("SDSINF_COORDINATION_TOPIC_ARN", ""),
            int(env["SDSINF_SHARDS"]),
        )

    def intermediate(self) -> dict[str, Any]:
        """An Object run's event entry."""
        return {"bucket": self.intermediate_bucket, "buckets": self.buckets}

    def queue(self, table: str, queue_urls: list[str]) -> dict[str, Any]:
        """A Queue run's event entry, for queues already made (run_queues.make_queues)."""
        return {
            "topic_arns": self.topics,
            "coordination_topic_arn": self.coordination_topic,
            "table": table,
            "queue_urls": queue_urls,
        }
