"""The console's first screen, driven with the Pilot against the local cloud."""

from __future__ import annotations

from backend.context import Context
from tui.app import SkydeckApp


async def test_console_shows_profile_stacks_and_jobs(cloud: Context) -> None:
    from lambda_src.jobs.schema import parse_job

    job = cloud.jobs.submit(parse_job({"name": "console-visible", "scene": "lego"}))
    app = SkydeckApp(ctx=cloud, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "READ-ONLY" in app.sub_title and "local cloud" in app.sub_title
        summary = str(app.query_one("#summary").render())
        assert "infra CREATE_COMPLETE" in summary
        table = app.query_one("#jobs")
        ids = [table.get_row_at(i)[0] for i in range(table.row_count)]
        assert job["job_id"] in ids
        await pilot.press("q")
