"""What the console's monitor shows: queue depths, jobs per state, and the newest jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambda_src.jobs.job_table import BY_STATE_INDEX
from lambda_src.jobs.record import JobRecord
from lambda_src.jobs.schema import STATES

if TYPE_CHECKING:
    from backend.context import Context


@dataclass(frozen=True)
class Snapshot:
    at: float
    queue_visible: int
    queue_in_flight: int
    dead_letter: int
    per_state: dict[str, int]
    recent: list[JobRecord] = field(default_factory=list)


def count_by_state(ctx: Context) -> dict[str, int]:
    store = ctx.jobs.store
    counts: dict[str, int] = {}
    for state in STATES:
        total, start = 0, None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": store.table,
                "IndexName": BY_STATE_INDEX,
                "KeyConditionExpression": "#s = :s",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":s": {"S": state}},
                "Select": "COUNT",
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = store.ddb.query(**kwargs)
            total += int(resp.get("Count", 0))
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        counts[state] = total
    return counts


def snapshot(ctx: Context, recent: int = 50, counts: dict[str, int] | None = None) -> Snapshot:
    """Queue depths and the newest jobs; pass `counts` to reuse per-state counts (they cost a
    query per state over the whole table, so callers refresh them less often)."""
    depth = ctx.jobs.queue_depth()
    return Snapshot(
        at=time.time(),
        queue_visible=depth["queue_visible"],
        queue_in_flight=depth["queue_in_flight"],
        dead_letter=depth["dead_letter_visible"] + depth["dead_letter_in_flight"],
        per_state=counts if counts is not None else count_by_state(ctx),
        recent=ctx.jobs.list(limit=recent).items,
    )
