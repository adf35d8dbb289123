"""The jobs pipeline under load and faults, short form (full size: benchmarks/load_bench.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.core.paths import Home
from backend.localcloud import control
from tests.load import LoadPlan, run

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own


def test_no_job_is_lost_made_twice_or_stuck_while_executors_and_the_cloud_are_killed(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    plan = LoadPlan(jobs=150, clients=6, executors=3, kill_executor_every_s=4, cloud_kills=1, drain_timeout_s=240)
    try:
        report = run(home, plan, say=lambda line: None)
    finally:
        control.down(home)
    text = "\n".join(report.lines())
    assert report.submitted == plan.jobs, text
    assert not report.lost and not report.duplicated and not report.stuck, text
    assert not report.failed, f"{text}\n{report.failed[:5]}"
    assert not report.executors_exited_on_their_own, text
    assert report.executors_alive == plan.executors and report.executors_killed >= 2, text
    assert len(report.replay_s) == plan.cloud_kills, text
