"""The console driven with the Pilot against the real local cloud."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from backend.context import Context
from backend.core.profiles import Profile
from backend.interface import Backend
from lambda_src.jobs.schema import parse_job
from tests.console_pilot import settle, wait_until
from tui.app import SkydeckApp

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own

SIZE = (120, 40)


def rows(app: SkydeckApp, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.fixture
def fresh(cloud_home) -> Context:  # noqa: ANN001
    return Context(home=cloud_home, profile=Profile(name="tui", stack_prefix=f"tui{uuid.uuid4().hex[:8]}"))


async def test_with_nothing_deployed_the_console_opens_on_stacks(fresh: Context) -> None:
    app = SkydeckApp(backend=Backend(fresh))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await settle(app, pilot)
        assert app.current_mode == "stacks"


async def test_deploy_and_delete_from_the_stacks_screen_with_confirmation(fresh: Context) -> None:
    app = SkydeckApp(backend=Backend(fresh), mode="stacks")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert rows(app, "#stacks-table")[0][:1] == ["infra"]
        assert "NOT_DEPLOYED" in rows(app, "#stacks-table")[0][1]
        await pilot.press("d")
        await pilot.press("n")  # declined: nothing happens
        await settle(app, pilot)
        assert fresh.stacks.describe("infra").status == "NOT_DEPLOYED"
        await pilot.press("d")
        await pilot.press("y")
        await settle(app, pilot)
        assert fresh.stacks.describe("infra").status == "CREATE_COMPLETE"
        assert "CREATE_COMPLETE" in rows(app, "#stacks-table")[0][1]
        events = "\n".join(str(line.text) for line in app.screen.query_one("#stack-events").lines)
        assert "JobsTable" in events and "deploy infra: CREATE_COMPLETE" in events
        await pilot.press("x")
        await pilot.press("y")
        await settle(app, pilot)
        assert fresh.stacks.describe("infra").status == "NOT_DEPLOYED"


async def test_compose_submit_and_see_the_job_listed(cloud: Context, tmp_path: Path) -> None:
    from gpu_executor.plenoxels.scene import make_scene

    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    scene = f"tui-{uuid.uuid4().hex[:6]}"
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        await pilot.press(*scene)
        lr = app.screen.query_one("#cfg-lr_sigma", Input)
        lr.value = "fast"
        await pilot.pause()
        error = str(app.screen.query_one("#composer-error", Static).render())
        assert "config.lr_sigma" in error and "number" in error
        assert lr.has_class("invalid")
        lr.value = "12.5"
        await pilot.pause()
        assert "valid" in str(app.screen.query_one("#composer-error", Static).render())
        assert '"lr_sigma": 12.5' in str(app.screen.query_one("#composer-preview", Static).render())
        await pilot.press("ctrl+s")  # the scene is not pushed yet: refused, with the command that fixes it
        await settle(app, pilot)
        refused = str(app.screen.query_one("#composer-error", Static).render())
        assert "not in the data bucket" in refused and f"--name {scene}" in refused
        make_scene(scene, tmp_path / "scene", size=16, views=3, test_views=1)
        cloud.scenes.push(tmp_path / "scene", scene)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        app.screen.action_refresh()
        await settle(app, pilot)
        listed = [r for r in rows(app, "#jobs-table") if r[2] == scene]
        assert listed and "QUEUED" in listed[0][1]
    job = next(j for j in cloud.jobs.list(limit=1000).items if j.name == scene)
    # on the local cloud the composer starts from the CPU preset (syn would train for hours here)
    assert job.config["lr_sigma"] == 12.5 and job.preset == "syn-cpu-quick"


async def test_monitor_shows_queue_depth_change(cloud: Context) -> None:
    app = SkydeckApp(backend=Backend(cloud), mode="monitor")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = app.screen.snapshot.queue_visible
        cloud.jobs.submit(parse_job({"scene": "depth-check"}))
        app.screen.action_refresh()
        await settle(app, pilot)
        assert app.screen.snapshot.queue_visible == before + 1
        title = str(app.screen.query_one("#title-visible", Static).render())
        assert f"queued messages: {before + 1}" in title


async def test_read_only_mode_changes_nothing(cloud: Context) -> None:
    job = cloud.jobs.submit(parse_job({"name": "ro-check", "scene": "lego"}))
    app = SkydeckApp(backend=Backend(cloud), read_only=True, mode="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "READ-ONLY" in app.sub_title
        table = app.screen.query_one("#jobs-table", DataTable)
        keys = [k.value for k in table.rows]
        table.move_cursor(row=keys.index(job.job_id))
        await pilot.press("c", "y", "n", "y")
        await settle(app, pilot)
        assert len(app.screen_stack) == 1  # neither the confirm nor the composer opened
        await pilot.press("1", "d", "y", "x", "y", "a", "y")
        await settle(app, pilot)
    assert cloud.jobs.get(job.job_id).state == "QUEUED"
    assert cloud.stacks.describe("api").status == "CREATE_COMPLETE"


async def test_filter_and_help(cloud: Context) -> None:
    cloud.jobs.submit(parse_job({"name": "needle-job", "scene": "lego"}))
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"needle")
        await pilot.pause()
        names = {r[2] for r in rows(app, "#jobs-table")}
        assert names == {"needle-job"}
        await pilot.press("escape")
        await pilot.press("escape")
        await pilot.pause()
        assert len(rows(app, "#jobs-table")) > 1
        await pilot.press("question_mark")
        await pilot.pause()
        assert "New job" in str(app.screen.query_one("Static").render())


async def test_sdsinf_screen_launches_a_serial_run_and_shows_workers_and_summary(cloud: Context, tmp_path) -> None:  # noqa: ANN001
    from backend.sdsinf.data import generate
    from backend.sdsinf.runs import SdsinfRuns

    cloud.stacks.deploy("sdsinf")
    info = generate(tmp_path / "gc", 1024, 10, 120, seed=3)
    SdsinfRuns(cloud).upload(tmp_path / "gc", 1024, 10, "tui-small")
    app = SkydeckApp(backend=Backend(cloud), mode="sdsinf")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#sds-data", Input).value = "tui-small"
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        workers = rows(app, "#sds-workers")
        assert workers and workers[0][0] == "0" and workers[0][2] == "10/10"
        status = str(app.screen.query_one("#sds-status", Static).render())
        assert f"{info['categories']} of 120 categorised" in status and "match the truth" in status
        assert len(app.screen.query_one("#sds-plot").data) == 10
        assert len(app.screen.query_one("#sds-comp").data) == 10 and max(app.screen.query_one("#sds-comp").data) > 0
        assert "communication 0% of it" in str(app.screen.query_one("#sds-plot-title", Static).render())
        assert any(r[1] == "b1_1024n_1w_10000bs_serial" for r in rows(app, "#sds-runs"))
        # `c`: the run under the cursor beside a published metrics file (here the run's own: ratios of 1)
        from textual.widgets import DataTable

        from tui.screens.sdsinf.compare import ComparisonScreen

        run_id = str(rows(app, "#sds-runs")[0][0])
        published = tmp_path / "master_metrics_published.csv"
        bucket = cloud.stacks.outputs("sdsinf")["MetricsBucket"]
        body = cloud.clients.client("s3").get_object(Bucket=bucket, Key=f"runs/{run_id}/metrics.csv")["Body"].read()
        published.write_bytes(body)
        app.screen.query_one("#sds-runs", DataTable).move_cursor(row=0)
        await pilot.press("c")
        await settle(app, pilot)
        app.screen.query_one(Input).value = str(published)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ComparisonScreen), app.screen
        shown = app.screen.query_one("#comparison-table", DataTable)
        cells = {str(shown.get_row_at(i)[0]): shown.get_row_at(i) for i in range(shown.row_count)}
        assert str(cells["NUM_LAYERS"][3]) == "1" and str(cells["METRIC_S3_NUM_READS"][3]) == "1"
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, ComparisonScreen)


async def test_job_detail_shows_the_latest_render_in_the_terminal(cloud: Context, tmp_path) -> None:  # noqa: ANN001
    import io

    from PIL import Image

    from gpu_executor.storage import S3Storage
    from tui.screens.jobs.detail import JobDetailScreen

    store = cloud.jobs.store
    job_id = store.submit(parse_job({"name": "preview-check", "scene": "demo", "engine": "torch"})).job_id
    store.claim(job_id, "tui-worker")
    store.finish(job_id, "tui-worker", "SUCCEEDED", result={"psnr": 31.5, "history": [{"psnr": 1.0}] * 50})
    png = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(png, format="PNG")
    storage = S3Storage(cloud.clients.client("s3"), cloud.scenes.bucket, tmp_path)
    storage.put(job_id, "preview.png", png.getvalue())
    storage.put(job_id, "job.log", b"2026-11-24 10:00:00 claimed by w\n2026-11-24 10:02:00 SUCCEEDED {'psnr': 31.5}\n")
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.push_screen(JobDetailScreen(job_id))
        await settle(app, pilot)
        preview = app.screen.query_one("#job-preview", Static).render()
        assert "▀" in str(preview) and "PSNR 31.50 dB" in str(preview)
        spans = [str(s.style) for s in preview.spans]
        assert any("rgb(200,40,40)" in s.replace(" ", "") for s in spans)
        details = str(app.screen.query_one("#job-detail", Static).render())
        assert "31.5" in details and "history" not in details  # the long progress history is not dumped
        log = str(app.screen.query_one("#job-log", Static).render())
        assert "claimed by w" in log and "SUCCEEDED" in log
        # a finished job does not change: once its last log and preview are read, the screen stops
        # asking for it every second (it cost a request and a repaint each time)
        screen = app.screen
        await wait_until(pilot, lambda: screen._poll is None, "the finished job's detail to stop polling")


async def test_a_followed_log_is_read_by_its_tail_in_whole_lines(cloud: Context, tmp_path) -> None:  # noqa: ANN001
    from gpu_executor.storage import S3Storage

    store = cloud.jobs.store
    job_id = store.submit(parse_job({"name": "log-tail", "scene": "demo", "engine": "torch"})).job_id
    storage = S3Storage(cloud.clients.client("s3"), cloud.scenes.bucket, tmp_path)
    storage.put(job_id, "job.log", "".join(f"line {i:06d}\n" for i in range(100_000)).encode())  # 1.2 MB
    backend = Backend(cloud)
    tail = backend.job_log(job_id, tail_bytes=1000)
    assert tail is not None and len(tail) <= 1000
    assert tail.endswith("line 099999\n") and tail.startswith("line ")  # no line cut in half
    assert backend.job_log(job_id).startswith("line 000000\n")
    storage.put(job_id, "job.log", b"")
    assert backend.job_log(job_id, tail_bytes=1000) == ""


async def test_batch_submit_checks_the_file_then_submits_all(cloud: Context, tmp_path) -> None:  # noqa: ANN001
    scene = f"batch-{uuid.uuid4().hex[:6]}"
    good = tmp_path / "tune.yaml"
    good.write_text(f"preset: syn-cpu-quick\nscenes: [{scene}]\ngrid:\n  lr_sigma: [10, 30]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"preset: syn-cpu-quick\nscenes: [{scene}]\ngrid:\n  lr_sigma: [fast]\n")
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("b")
        await settle(app, pilot)
        path = app.screen.query_one("#batch-path", Input)
        path.value = str(bad)
        await pilot.press("enter")
        await settle(app, pilot)
        assert "lr_sigma" in str(app.screen.query_one("#batch-plan", Static).render())
        await pilot.press("ctrl+s")  # not checked successfully: nothing is submitted
        await settle(app, pilot)
        path.value = str(good)
        await pilot.press("enter")
        await settle(app, pilot)
        assert "would submit 2" in str(app.screen.query_one("#batch-plan", Static).render())
        assert not [j for j in cloud.jobs.list(limit=1000).items if j.scene == scene]
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert "submitted 2" in str(app.screen.query_one("#batch-plan", Static).render())
    assert len([j for j in cloud.jobs.list(limit=1000).items if j.scene == scene]) == 2


async def test_key_bar_lists_the_screens_bindings_and_a_click_runs_one(cloud: Context) -> None:
    app = SkydeckApp(backend=Backend(cloud), mode="stacks")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        bar = app.screen.query_one("#keybar", Static)
        text = bar.render().plain
        assert "d Deploy/update" in text and "2 Jobs" in text and "^p Palette" in text
        await pilot.click("#keybar", offset=(text.index("2 Jobs") + 1, 0))
        await settle(app, pilot)
        assert type(app.screen).__name__ == "JobsScreen"
        assert "n New job" in app.screen.query_one("#keybar", Static).render().plain
    ro = SkydeckApp(backend=Backend(cloud), mode="stacks", read_only=True)
    async with ro.run_test(size=SIZE) as pilot:
        await settle(ro, pilot)
        assert "Deploy" not in ro.screen.query_one("#keybar", Static).render().plain


async def test_a_job_that_ends_is_announced_on_any_screen(cloud: Context) -> None:
    store = cloud.jobs.store
    job_id = store.submit(parse_job({"name": "announce-me", "scene": "lego"})).job_id
    app = SkydeckApp(backend=Backend(cloud), mode="stacks")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.watch_jobs()  # the first look learns what is there
        await settle(app, pilot)
        store.claim(job_id, "tui-worker")
        store.finish(job_id, "tui-worker", "SUCCEEDED", result={"psnr": 30.25})
        app.watch_jobs()
        await settle(app, pilot)
        messages = [n.message for n in app._notifications]
        assert any("announce-me succeeded: PSNR 30.25 dB" in m for m in messages), messages


async def test_help_names_keys_as_typed_and_a_finished_job_offers_no_cancel(cloud: Context) -> None:
    from lambda_src.jobs.schema import parse_job

    store = cloud.jobs.store
    job_id = store.submit(parse_job({"name": "ended-job", "scene": "lego"})).job_id
    store.claim(job_id, "w")
    store.finish(job_id, "w", "SUCCEEDED", result={"psnr": 30.0})
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        text = str(app.screen.query_one(Static).render())
        assert " / " in text or "/  " in text
        assert "slash" not in text and "escape " not in text
        await pilot.press("escape")
        from tui.screens.jobs.detail import JobDetailScreen

        app.push_screen(JobDetailScreen(job_id))
        await settle(app, pilot)
        assert app.screen.job is not None and app.screen.job.ended
        assert app.screen.check_action("cancel", ()) is False


def test_the_textual_internals_the_console_relies_on_are_still_there() -> None:
    """Screens adopt the app's stylesheet generation (a 60-90 ms saving on each first visit) through
    two private names of Textual, which is pinned for that reason: this fails first when they change."""
    from textual import _context
    from textual.app import App
    from textual.screen import Screen

    assert hasattr(_context, "active_app")
    assert "_css_update_count" in App.__init__.__code__.co_names or hasattr(App, "_css_update_count")
    assert "_css_update_count" in Screen.__init__.__code__.co_names or hasattr(Screen, "_css_update_count")


async def test_the_sdsinf_screen_does_not_trap_the_keys(cloud: Context) -> None:
    from textual.widgets import Input as TextInput

    app = SkydeckApp(backend=Backend(cloud), mode="sdsinf")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.screen.focused is None  # nothing grabbed the keys on arrival
        await pilot.press("2")
        await settle(app, pilot)
        assert app.current_mode == "jobs"
        await pilot.press("4")
        await settle(app, pilot)
        field = app.screen.query_one("#sds-workers-n", TextInput)
        field.focus()
        await pilot.pause()
        await pilot.press("escape")  # esc leaves the field ...
        await pilot.pause()
        assert app.screen.focused is None
        await pilot.press("1")  # ... and the screen keys work again
        await settle(app, pilot)
        assert app.current_mode == "stacks"


async def test_the_sdsinf_form_takes_the_invocation_tree_and_names_a_tree_that_cannot_be(cloud: Context) -> None:
    from textual.widgets import Select

    cloud.stacks.deploy("sdsinf")
    app = SkydeckApp(backend=Backend(cloud), mode="sdsinf")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#sds-preset", Select).value = "c1_1024n_8w_10000bs_queue"
        app.screen.query_one("#sds-workers-n", Input).value = "6"
        app.screen.query_one("#sds-bfr", Input).value = "2"
        app.screen.query_one("#sds-levels", Input).value = "x"
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert "levels: must be a positive integer" in str(app.screen.query_one("#sds-status", Static).render())
        app.screen.query_one("#sds-levels", Input).value = "3"
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        status = str(app.screen.query_one("#sds-status", Static).render())
        assert "with --bfr 2, 6 worker(s) make a tree of 2 level(s)" in status, status


async def test_keys_can_be_remapped_by_binding_id(cloud: Context, tmp_path: Path) -> None:
    (cloud.home.root / "keymap.yaml").write_text("app.go_stacks: f5\n")
    try:
        app = SkydeckApp(backend=Backend(cloud), mode="jobs")
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("f5")
            await settle(app, pilot)
            assert app.current_mode == "stacks"
    finally:
        (cloud.home.root / "keymap.yaml").unlink()


async def test_tables_sort_by_column_and_reverse_on_a_second_sort(cloud: Context) -> None:
    from lambda_src.jobs.schema import parse_job

    tag = uuid.uuid4().hex[:6]
    for name in ("mid", "zed", "abe"):
        cloud.jobs.submit(parse_job({"name": f"s{tag}-{name}", "scene": "lego"}))
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        table = screen.query_one("#jobs-table", DataTable)
        screen.filter_text = f"s{tag}"
        from tui.widgets.tables import set_sort

        set_sort(table, 2)  # the name column, as a click on its header does
        screen.refilter()
        await pilot.pause()
        assert [r[2] for r in rows(app, "#jobs-table")] == [f"s{tag}-abe", f"s{tag}-mid", f"s{tag}-zed"]
        set_sort(table, 2)  # again: reversed
        screen.refilter()
        await pilot.pause()
        assert [r[2] for r in rows(app, "#jobs-table")] == [f"s{tag}-zed", f"s{tag}-mid", f"s{tag}-abe"]
        await pilot.press("o")  # the key: the next step of the focused table's sort
        await pilot.pause()
        assert getattr(table, "sort_by", None) == (3, False)


def test_a_finished_job_shows_no_stage_and_the_stack_panel_names_what_a_stack_holds() -> None:
    from backend.interface import Job

    record = {"job_id": "j", "state": "SUCCEEDED", "progress": {"iteration": 9, "stage": "writing results"}}
    assert Job.from_record(record).progress.to_dict() == {"iteration": 9}
    running = {**record, "state": "RUNNING"}
    assert Job.from_record(running).progress.stage == "writing results"


async def test_the_tour_needs_no_terminal_scene_data_and_results_from_the_console(
    cloud: Context, tmp_path: Path
) -> None:
    from textual.widgets import Input as TextInput

    from lambda_src.jobs.schema import parse_job
    from tui.screens.jobs.detail import JobDetailScreen

    name = f"tour{uuid.uuid4().hex[:6]}"
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("m")  # make + push a scene
        await pilot.pause()
        app.screen.query_one("#form-name", TextInput).value = name
        app.screen.query_one("#form-dir", TextInput).value = str(tmp_path / "scene")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert cloud.scenes.exists(name)
        # a finished job's results, fetched from its detail screen
        store = cloud.jobs.store
        job_id = store.submit(parse_job({"name": name, "scene": name})).job_id
        store.claim(job_id, "w")
        store.finish(job_id, "w", "SUCCEEDED", result={"psnr": 30.0})
        cloud.clients.client("s3").put_object(
            Bucket=cloud.scenes.bucket, Key=f"results/{job_id}/metrics.json", Body=b'{"psnr": 30.0}'
        )
        app.push_screen(JobDetailScreen(job_id))
        await settle(app, pilot)
        await pilot.press("f")
        await pilot.pause()
        app.screen.query_one("#form-dir", TextInput).value = str(tmp_path / "fetched")
        await pilot.press("enter")
        await settle(app, pilot)
        assert (tmp_path / "fetched" / "metrics.json").read_bytes() == b'{"psnr": 30.0}'


async def test_sdsinf_data_is_generated_and_uploaded_from_the_console(cloud: Context, tmp_path: Path) -> None:
    from textual.widgets import Input as TextInput

    cloud.stacks.deploy("sdsinf")
    name = f"gc{uuid.uuid4().hex[:6]}"
    app = SkydeckApp(backend=Backend(cloud), mode="sdsinf")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("u")
        await pilot.pause()
        for key, value in (("name", name), ("dir", str(tmp_path / "gc")), ("layers", "4"), ("inputs", "30")):
            app.screen.query_one(f"#form-{key}", TextInput).value = value
        await pilot.press("ctrl+s")
        await settle(app, pilot)
    weights = cloud.stacks.outputs("sdsinf")["WeightsBucket"]
    assert cloud.clients.client("s3").head_object(Bucket=weights, Key=f"{name}/network.npz")["ContentLength"] > 0


@pytest.mark.timeout(900)  # it trains a job: on a machine busy with other work that can take minutes
async def test_the_readme_tour_inside_the_console(fresh: Context, tmp_path: Path) -> None:
    """Deploy, make and push a scene, compose, submit, watch to SUCCEEDED, fetch: no shell command."""
    import threading
    import time

    from textual.widgets import Input as TextInput
    from textual.widgets import Select

    from gpu_executor.engines import builtin_engines
    from gpu_executor.executor import Executor, ExecutorConfig

    app = SkydeckApp(backend=Backend(fresh))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        await settle(app, pilot)
        assert app.current_mode == "stacks"  # nothing deployed: the console starts where the tour does
        await pilot.press("d", "y")  # deploy infra (the first row), confirmed
        await settle(app, pilot)
        assert fresh.stacks.describe("infra").status == "CREATE_COMPLETE"
        await pilot.press("2", "m")  # make a scene and push it
        await pilot.pause()
        app.screen.query_one("#form-name", TextInput).value = "tour"
        app.screen.query_one("#form-dir", TextInput).value = str(tmp_path / "scene")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert fresh.scenes.exists("tour")
        await pilot.press("n")  # compose a short job on it
        await settle(app, pilot)
        app.screen.query_one("#preset", Select).value = "syn-cpu-quick"
        await settle(app, pilot)
        app.screen.query_one("#scene", TextInput).value = "tour"
        for key, value in (("reso", "[[24, 24, 24]]"), ("n_iters", "40"), ("upsamp_every", "1000"),
                           ("lr_sigma_delay_steps", "0"), ("batch_size", "2000")):  # fmt: skip
            app.screen.query_one(f"#cfg-{key}", TextInput).value = value
        app.screen.query_one("#extra", TextInput).value = "n_eval=4"  # score 4 test views, not all of them
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        job = next(j for j in fresh.jobs.list(limit=10).items if j.scene == "tour")
        assert job.config["n_eval"] == 4
        # a laptop's executor (what `local up` runs) takes it
        executor = Executor(
            fresh.jobs.store, builtin_engines(), ExecutorConfig(wait_s=1), storage=fresh.scenes.storage(tmp_path / "c")
        )
        worker = threading.Thread(target=executor.run, kwargs={"once": True})
        worker.start()
        app.screen.action_refresh()
        await settle(app, pilot)
        await pilot.press("enter")  # watch it on its own screen until it succeeds
        await settle(app, pilot)
        # a deadline, not a count of pauses: a busy machine slows the training, not the outcome
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if app.screen.job is not None and app.screen.job.state == "SUCCEEDED":
                break
            await pilot.pause(0.2)
        worker.join(timeout=max(1.0, deadline - time.monotonic()))
        assert app.screen.job.state == "SUCCEEDED" and app.screen.job_id == job.job_id
        await pilot.press("f")  # fetch its results
        await pilot.pause()
        app.screen.query_one("#form-dir", TextInput).value = str(tmp_path / "results")
        await pilot.press("enter")
        await settle(app, pilot)
    assert (tmp_path / "results" / "ckpt.npz").exists() and (tmp_path / "results" / "metrics.json").exists()


async def test_the_stacks_panel_lists_the_fleets_hosts_with_a_failed_boot_and_its_reason(fresh: Context) -> None:
    import json

    fresh.stacks.deploy("infra")
    fresh.stacks.deploy("fleet")
    bucket = fresh.stacks.describe("infra").outputs["Bucket"]
    # what a host whose check failed leaves in the bucket (gpu_executor/host/setup.sh)
    record = {"state": "failed", "step": "check", "reason": "/opt/pytorch/bin/python is Python 3.7.17 [old AMI]",
              "ami": "ami-0e9d3c53b79c2cc6f", "instance_type": "g4dn.xlarge", "steps": []}  # fmt: skip
    fresh.clients.client("s3").put_object(
        Bucket=bucket, Key="fleet/hosts/i-0123456789abcdef0/boot.json", Body=json.dumps(record).encode()
    )
    app = SkydeckApp(backend=Backend(fresh), mode="stacks")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#stacks-table", DataTable)
        table.move_cursor(row=[r[0] for r in rows(app, "#stacks-table")].index("fleet"))
        await settle(app, pilot)
        panel = str(app.screen.query_one("#stack-outputs", Static).render())
        assert "i-0123456789abcdef0 gone g4dn.xlarge failed at check" in panel
        assert "Python 3.7.17 [old AMI]" in panel
    fresh.stacks.delete("fleet")
    fresh.stacks.delete("infra")


def test_the_console_makes_the_same_scene_as_the_cli(cloud: Context, tmp_path: Path) -> None:
    from tests.test_cli import run

    Backend(cloud).make_and_push_scene("same-scene", tmp_path / "console")
    made = run(cloud.home.root, "data", "make-scene", "same-scene", "--out", str(tmp_path / "cli"))
    assert made.returncode == 0, made.stderr

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert files(tmp_path / "console") == files(tmp_path / "cli")
    assert (tmp_path / "console" / "transforms_train.json").read_text() == (
        tmp_path / "cli" / "transforms_train.json"
    ).read_text()


async def test_launching_from_the_sdsinf_form_gives_the_screen_its_keys_back(cloud: Context) -> None:
    from textual.widgets import Input as TextInput

    app = SkydeckApp(backend=Backend(cloud), mode="sdsinf")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#sds-data", TextInput).focus()
        await pilot.pause()
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert not isinstance(app.focused, TextInput), app.focused
        screen = app.screen
        before = screen.query_one("#sds-data", TextInput).value
        await pilot.press("c")  # the screen's compare key, not a letter in the data field
        await settle(app, pilot)
        assert screen.query_one("#sds-data", TextInput).value == before


@pytest.mark.parametrize("size", [(80, 24), (140, 45)], ids=["80x24", "140x45"])
async def test_a_jobs_detail_shows_whole_ids_and_names_beside_its_preview(cloud: Context, tmp_path, size) -> None:  # noqa: ANN001
    import io

    from PIL import Image

    from gpu_executor.storage import S3Storage
    from tui.screens.jobs.detail import JobDetailScreen

    store = cloud.jobs.store
    spec = parse_job({"name": "fits", "scene": "demo", "engine": "torch", "preset": "syn-cpu-quick"})
    job_id = store.submit(spec).job_id
    store.claim(job_id, "tui-worker")
    phases = {"queued": 0.5, "load": 0.8, "train": 137.6, "evaluate": 1.7, "render": 5.0, "upload": 0.3}
    store.finish(job_id, "tui-worker", "SUCCEEDED", result={"psnr": 35.35, "phases_s": phases})
    png = io.BytesIO()
    Image.new("RGB", (128, 128), (30, 90, 200)).save(png, format="PNG")
    S3Storage(cloud.clients.client("s3"), cloud.scenes.bucket, tmp_path).put(job_id, "preview.png", png.getvalue())
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        app.push_screen(JobDetailScreen(job_id))
        await settle(app, pilot)
        preview = app.screen.query_one("#job-preview", Static)
        await wait_until(pilot, lambda: "▀" in str(preview.render()), "the preview")
        detail = app.screen.query_one("#job-detail", Static)
        text = str(detail.render())
        assert job_id in text.replace("\n", " ").split() or job_id in text.splitlines()[0], text
        lines = text.splitlines()
        assert any(line.split() == ["preset", "syn-cpu-quick"] for line in lines), text
        assert any(line.split() == ["train", "2m", "18s"] for line in lines), text
        # no line of the details is wrapped: every one fits the widget's width
        assert detail.content_region.width >= max(len(line) for line in lines), (detail.content_region, text)
        assert detail.content_region.width >= 60


async def test_at_80x24_a_finished_jobs_result_is_on_screen_and_the_rest_is_reached_by_keys(cloud: Context) -> None:
    # the result, the config and the log lay below the fold; PageDown, End and Down changed nothing
    from tui.screens.jobs.detail import JobDetailScreen

    store = cloud.jobs.store
    job_id = store.submit(parse_job({"name": "small-screen", "scene": "demo", "engine": "torch"})).job_id
    store.claim(job_id, "tui-worker")
    store.heartbeat(job_id, "tui-worker", {"iteration": 1200, "psnr": 34.764, "rays_per_s": 41478.7, "voxels": 194111})
    notes = [f"note number {i}" for i in range(12)]
    store.finish(job_id, "tui-worker", "SUCCEEDED", result={"psnr": 35.337, "ssim": 0.9766, "notes": notes})
    app = SkydeckApp(backend=Backend(cloud), mode="jobs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.push_screen(JobDetailScreen(job_id))
        await settle(app, pilot)
        screen = app.screen
        assert "35.337" in _visible_text(app), "the result is not on the first screen"
        assert "note number 11" not in _visible_text(app)
        await pilot.press("end")
        await settle(app, pilot)
        assert "note number 11" in _visible_text(app), "End did not reach the last of the details"
        await pilot.press("home")
        await settle(app, pilot)
        assert "35.337" in _visible_text(app)
        await pilot.press("pagedown")
        await settle(app, pilot)
        assert "35.337" not in _visible_text(app), "PageDown did not move the details"
        assert "PgDn/PgUp scroll" in str(screen.query_one("#keybar").render())


def _visible_text(app: SkydeckApp) -> str:
    """What the terminal shows now, as text (the screenshot's characters, without its styles)."""
    import html
    import re

    svg = app.export_screenshot()
    return html.unescape(" ".join(re.findall(r">([^<>]+)</text>", svg))).replace("\xa0", " ")


async def test_the_composer_offers_the_pushed_scene_in_its_focused_field(fresh: Context, tmp_path: Path) -> None:
    # the composer opened on an empty scene field although `demo` had just been pushed
    from textual.widgets import Input

    from gpu_executor.plenoxels.scene import make_scene
    from tui.screens.jobs.composer import ComposerScreen

    fresh.stacks.deploy("infra")
    make_scene("demo", tmp_path / "demo", size=16, views=3, test_views=1)
    fresh.scenes.push(tmp_path / "demo", "demo")
    app = SkydeckApp(backend=Backend(fresh), mode="jobs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.push_screen(ComposerScreen())
        await settle(app, pilot)
        await settle(app, pilot)  # again: the first frame starts more work (the form, the lists)
        scene = app.screen.query_one("#scene", Input)
        assert app.focused is scene and scene.value == "demo"
        other = app.screen.query_one("#name", Input)
        assert scene.styles.background != other.styles.background  # the focused field is marked
    fresh.stacks.delete("infra")


def _runs_listed(app: SkydeckApp, ids: list[str]) -> bool:
    tables = app.screen.query("#sds-runs")
    if not tables:
        return False
    listed = " ".join(str(cell) for row in rows(app, "#sds-runs") for cell in row)
    return all(run_id[:15] in listed for run_id in ids)


async def test_at_80x24_the_sdsinf_runs_table_shows_its_rows(cloud: Context) -> None:
    # the plots took the rows: at 80x24 the runs table showed its header alone
    import json

    cloud.stacks.deploy("sdsinf")
    metrics = cloud.stacks.outputs("sdsinf")["MetricsBucket"]
    s3 = cloud.clients.client("s3")
    ids = [f"20991231-23590{i}-small{i}" for i in range(3)]  # the newest of all, so listed first
    for run_id in ids:
        summary = {"run_id": run_id, "config": "c1_1024n_2w_10000bs_queue", "variant": "queue", "workers": 2}
        s3.put_object(Bucket=metrics, Key=f"runs/{run_id}/summary.json", Body=json.dumps(summary).encode())
    app = SkydeckApp(backend=Backend(cloud), mode="sdsinf")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        # the screen mounts its tables a frame after its first paint and fills the runs from a worker:
        # wait for the rows themselves, however slow the machine
        await wait_until(pilot, lambda: _runs_listed(app, ids), "the three runs in the runs table", timeout_s=120)
        await settle(app, pilot)
        table = app.screen.query_one("#sds-runs", DataTable)
        assert table.region.height >= 4, table.region
        shown = _visible_text(app)
    for run_id in ids:  # the session's cloud is shared: other tests list its runs
        s3.delete_object(Bucket=metrics, Key=f"runs/{run_id}/summary.json")
    assert all(run_id[:15] in shown for run_id in ids), shown


async def test_the_sdsinf_forms_empty_fields_are_valid_and_enter_launches(cloud: Context) -> None:
    # empty batch size, bfr and levels turned dark red after a Tab with no message; Enter did nothing
    from textual.widgets import Input

    cloud.stacks.deploy("sdsinf")
    app = SkydeckApp(backend=Backend(cloud), mode="sdsinf")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await settle(app, pilot)  # again: the first frame starts more work (the form, the lists)
        batch = app.screen.query_one("#sds-batch", Input)
        batch.focus()
        await pilot.press("tab")
        await settle(app, pilot)
        assert not batch.has_class("-invalid"), "an empty field (the preset's value) is marked invalid"
        batch.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        await settle(app, pilot)  # again: the first frame starts more work (the form, the lists)
        status = str(app.screen.query_one("#sds-status").render())
        assert status.strip(), "Enter in the form launched nothing"


async def test_at_80x24_the_stacks_outputs_show_whole_bucket_names_and_scroll_to_the_last(fresh: Context) -> None:
    # the outputs panel broke bucket names mid-word even at 120 columns, beside 50 empty ones, and
    # at 80x24 the outputs below its twelfth line could not be reached
    from textual.containers import VerticalScroll

    fresh.stacks.deploy("infra")
    outputs = fresh.stacks.describe("infra").outputs
    app = SkydeckApp(backend=Backend(fresh), mode="stacks")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        shown = _visible_text(app)
        assert outputs["Bucket"] in shown and outputs["AccessLogBucket"] in shown
        box = app.screen.query_one("#stack-outputs-box", VerticalScroll)
        last = list(outputs)[-1]
        box.focus()
        await pilot.press("end")
        await settle(app, pilot)
        assert box.scroll_y > 0 and last in _visible_text(app)
    fresh.stacks.delete("infra")
