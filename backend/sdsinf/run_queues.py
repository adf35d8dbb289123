"""The Queue variant's per-run queues, for runs the backend starts (lambda_src.sdsinf.run_queues makes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambda_src.sdsinf.run_queues import make_queues, queue_prefix, remove_queues
from lambda_src.sdsinf.shards import Shards

if TYPE_CHECKING:
    from backend.core.context import Context


class RunQueues:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def out(self) -> dict[str, str]:
        return self.ctx.stacks.outputs("sdsinf")

    def prefix(self, run_id: str) -> str:
        return queue_prefix(self.out["QueuePrefix"], run_id)

    def make(self, run_id: str, workers: int) -> list[str]:
        clients = self.ctx.clients
        shards = Shards.from_outputs(self.out)
        return make_queues(
            clients.client("sqs"),
            clients.client("sns"),
            shards.topics,
            shards.coordination_topic,
            self.prefix(run_id),
            run_id,
            workers,
        )

    def cleanup(self, run_id: str) -> int:
        """Remove a Queue run's subscriptions and queues (after it ends, either way). Returns queues removed."""
        out = self.out
        if "Shards" not in out:
            return 0
        shards = Shards.from_outputs(out)
        clients = self.ctx.clients
        return remove_queues(
            clients.client("sqs"),
            clients.client("sns"),
            [*shards.topics, shards.coordination_topic],
            self.prefix(run_id),
        )
