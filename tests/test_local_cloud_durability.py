"""Durability as a property: whatever random sequence of calls a user makes, a restart (clean or
kill -9) gives back exactly the state the calls left. The long form runs in benchmarks/."""

from __future__ import annotations

from pathlib import Path

from tests.durability import run_sequences


def test_random_calls_survive_restarts_and_kill_9(tmp_path: Path) -> None:
    outcome = run_sequences(tmp_path, seeds=[11, 29, 47], length=45, restarts_per_sequence=2)
    assert outcome.restarts == 6 and outcome.operations == 3 * 45
    # every kind of call was tried at least once across the seeds
    assert {"s3_multipart_part", "s3_copy", "sqs_delete", "ddb_update", "cfn_change_set"} <= set(outcome.by_operation)
