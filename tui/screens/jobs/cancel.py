"""Cancelling a job from any screen that shows one: asked first, never offered for an ended job."""

from __future__ import annotations

from backend.interface import Job
from tui.messages import JobCancelled, WorkFailed
from tui.screens.base import DeckScreen
from tui.widgets.confirm import Confirm


def confirm_cancel(screen: DeckScreen, job: Job) -> None:
    if job.ended:
        screen.notify(f"job {job.job_id[:8]} already ended ({job.state}): nothing to cancel", severity="warning")
        return

    def go(yes: bool | None) -> None:
        if yes:
            _cancel(screen, job.job_id)

    screen.app.push_screen(Confirm(f"Cancel job {job.job_id[:8]} {job.name} ({job.state})?"), go)


def _cancel(screen: DeckScreen, job_id: str) -> None:
    def run() -> None:
        try:
            screen.post_message(JobCancelled(screen.deck.backend.cancel_job(job_id)))
        except Exception as exc:  # noqa: BLE001
            screen.post_message(WorkFailed("cancel", str(exc)))

    screen.run_worker(run, thread=True, group="jobs-cancel")


def cancelled_note(job: Job) -> str:
    return f"{job.job_id[:8]}: " + ("cancelled" if job.state == "CANCELLED" else "stop requested")
