"""What comes from the cloud is data, never commands.

Escape sequences and rich markup are planted, as anyone who can write a record, a log or a host's
prefix could plant them, in every field and source the front ends show; every command's bytes (piped
and on a terminal) and the console's screen must show them as text. Malformed records are shown as
malformed, with the rest of the listing, and names with a trailing newline are refused on every route.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable

from backend.context import Context
from backend.core.paths import Home
from backend.core.text import markup_safe, shown
from backend.interface import Backend
from backend.localcloud import control
from lambda_src.jobs.job_table import to_dynamo
from tests.console_pilot import settle
from tests.helpers import api, http, written
from tui.app import SkydeckApp

TITLE = "\x1b]0;pwned\x1b\\"
CLIPBOARD = "\x1b]52;c;cHduZWQ=\x1b\\"
CLEAR = "\x1b[2J"
LINK = "[link=http://evil.example]see fix[/link]"
CLOSE = "scene missing [/]"
HOSTILE = f"a{TITLE}b{CLIPBOARD}c{CLEAR}d {LINK} {CLOSE}"
# what a terminal would act on: any escape but rich's own colours (SGR, ESC [ digits m)
_SGR = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.slow


def test_control_characters_are_shown_and_markup_is_escaped() -> None:
    assert shown(TITLE) == "\\x1b]0;pwned\\x1b\\"
    assert shown("tab\there\nline\r\x07\x9b\u202e") == "tab\\there\\nline\\r\\x07\\x9b\\u202e"
    assert shown("two\nlines", keep_newlines=True) == "two\nlines"
    assert shown("x" * 50, limit=10) == "x" * 10 + "… (40 more characters)"
    from rich.console import Console

    console = Console(width=200, force_terminal=True, color_system="truecolor")
    with console.capture() as capture:
        console.print(f"[red]{markup_safe(HOSTILE)}[/red]")
    printed = _SGR.sub("", capture.get())
    assert "\x1b" not in printed and LINK in printed and CLOSE in printed


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Context, dict[str, str]]]:
    home = Home(tmp_path_factory.mktemp("hostile") / "home")
    control.up(home, workers=0)
    ctx = Context.create("local", home)
    for short in ("infra", "api", "fleet", "sdsinf"):
        ctx.stacks.deploy(short)
    planted = _plant(ctx, home)
    yield ctx, planted
    control.down(home)


def _cli(home: Path, *args: str, terminal: bool = False) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "SKYDECK_HOME": str(home), "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    if terminal:
        env["FORCE_COLOR"] = "1"  # rich writes as to a terminal: colours, links, and whatever the data holds
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, env=env, timeout=120)


def _plant(ctx: Context, home: Home) -> dict[str, str]:
    infra = ctx.stacks.outputs("infra")
    bucket = infra["Bucket"]
    s3 = ctx.clients.client("s3")
    submitted = _cli(
        home.root, "jobs", "submit", "--preset", "syn", "--scene", "lego", "--no-check", "--force", "--json"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    values = {":v": to_dynamo(HOSTILE), ":c": to_dynamo({"lr_sigma": HOSTILE, HOSTILE: 1})}
    ctx.clients.client("dynamodb").update_item(
        TableName=infra["TableName"], Key={"job_id": {"S": job_id}},
        UpdateExpression="SET #n = :v, scene = :v, engine = :v, worker = :v, #e = :v, config = :c",
        ExpressionAttributeNames={"#n": "name", "#e": "error"}, ExpressionAttributeValues=values,
    )  # fmt: skip
    s3.put_object(Bucket=bucket, Key=f"results/{job_id}/job.log", Body=f"line one\n{HOSTILE}\n".encode())
    host = "i-0123456789abcdef0"
    boot = {"state": "failed", "step": HOSTILE, "reason": HOSTILE, "ami": HOSTILE, "instance_type": "g5.xlarge",
            "steps": [{"name": HOSTILE, "state": "failed", "detail": HOSTILE}]}  # fmt: skip
    s3.put_object(Bucket=bucket, Key=f"fleet/hosts/{host}/boot.json", Body=json.dumps(boot).encode())
    s3.put_object(Bucket=bucket, Key=f"fleet/hosts/{host}/boot.log", Body=HOSTILE.encode())
    beat = {"time": HOSTILE, "job_id": HOSTILE}
    s3.put_object(Bucket=bucket, Key=f"fleet/hosts/{host}/executor.json", Body=json.dumps(beat).encode())
    s3.put_object(Bucket=bucket, Key=f"scenes/evil{CLEAR}[/]/transforms_train.json", Body=b"{}")
    metrics = ctx.stacks.outputs("sdsinf")["MetricsBucket"]
    run_id = "20261206-0101-hostile"
    summary = {"run_id": run_id, "config": HOSTILE, "variant": f"queue {CLOSE}", "error": HOSTILE, "state": "FAILED"}
    s3.put_object(Bucket=metrics, Key=f"runs/{run_id}/summary.json", Body=json.dumps(summary).encode())
    return {"job": job_id, "host": host, "run": run_id}


COMMANDS = [
    ("jobs", "list"),
    ("jobs", "show", "{job}"),
    ("jobs", "logs", "{job}"),
    ("fleet", "hosts"),
    ("fleet", "logs", "{host}"),
    ("data", "list"),
    ("sdsinf", "runs"),
    ("sdsinf", "show", "{run}"),
]


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_no_command_prints_the_clouds_escape_sequences_or_its_markup(
    hostile: tuple[Context, dict[str, str]], command: tuple[str, ...], terminal: bool
) -> None:
    ctx, planted = hostile
    args = [a.format(**planted) for a in command]
    done = _cli(ctx.home.root, *args, terminal=terminal)
    assert done.returncode == 0, done.stderr.decode()
    printed = _SGR.sub("", (done.stdout + done.stderr).decode())
    assert "\x1b" not in printed, printed
    assert "\x1b]8;" not in printed  # no hyperlink made of a [link] tag
    assert "\\x1b" in printed or command[:2] == ("data", "list")  # the planted bytes are shown, as text
    assert "internal error" not in printed


def test_jobs_watch_shows_a_failed_jobs_error_as_text(hostile: tuple[Context, dict[str, str]]) -> None:
    ctx, planted = hostile
    ctx.clients.client("dynamodb").update_item(
        TableName=ctx.stacks.outputs("infra")["TableName"], Key={"job_id": {"S": planted["job"]}},
        UpdateExpression="SET #s = :f", ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":f": {"S": "FAILED"}},
    )  # fmt: skip
    done = _cli(ctx.home.root, "jobs", "watch", planted["job"], terminal=True)
    printed = _SGR.sub("", (done.stdout + done.stderr).decode())
    assert done.returncode == 1 and "ended FAILED" in printed and CLOSE in printed
    assert "\x1b" not in printed


async def test_the_console_shows_the_clouds_text_as_text(hostile: tuple[Context, dict[str, str]]) -> None:
    ctx, planted = hostile
    app = SkydeckApp(backend=Backend(ctx), mode="jobs")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#jobs-table", DataTable)
        cells = [str(c) for c in table.get_row(planted["job"])]
        assert any("\\x1b]0;pwned" in c for c in cells), cells
        assert not any("\x1b" in c for c in cells)
    app = SkydeckApp(backend=Backend(ctx), mode="stacks")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)  # the fleet's hosts panel reads the planted boot record without a MarkupError


def test_a_malformed_record_is_listed_as_such_and_the_rest_still_shows(hostile: tuple[Context, dict[str, str]]) -> None:
    ctx, planted = hostile
    s3 = ctx.clients.client("s3")
    metrics = ctx.stacks.outputs("sdsinf")["MetricsBucket"]
    bad = {"20261206-0102-notjson": b"{not json", "20261206-0103-noconfig": b'{"run_id": "x", "variant": "queue"}',
           "20261206-0104-slow": json.dumps({"run_id": "20261206-0104-slow", "config": "c", "variant": "queue",
                                             "runtime_s": "slow"}).encode()}  # fmt: skip
    for run_id, body in bad.items():
        s3.put_object(Bucket=metrics, Key=f"runs/{run_id}/summary.json", Body=body)
    listed = _cli(ctx.home.root, "sdsinf", "runs")
    text = listed.stdout.decode()
    assert listed.returncode == 0, listed.stderr.decode()
    assert planted["run"] in text and all(run_id in text for run_id in bad) and text.count("MALFORMED") == 3
    assert "runtime_s is" in _cli(ctx.home.root, "sdsinf", "runs", "--json").stdout.decode()
    one = _cli(ctx.home.root, "sdsinf", "show", "20261206-0102-notjson")
    assert one.returncode == 1 and b"not JSON" in one.stderr
    bucket = ctx.stacks.outputs("infra")["Bucket"]
    for host, record in (
        ("i-00000000000000001", {"steps": [{"name": "check"}]}),
        ("i-00000000000000002", {"state": 7}),
    ):
        s3.put_object(Bucket=bucket, Key=f"fleet/hosts/{host}/boot.json", Body=json.dumps(record).encode())
    hosts = _cli(ctx.home.root, "fleet", "hosts")
    assert hosts.returncode == 0, hosts.stderr.decode()
    assert b"i-00000000000000001" in hosts.stdout and b"i-00000000000000002" in hosts.stdout
    assert b"malformed" in hosts.stdout and planted["host"].encode() in hosts.stdout
    odd = _cli(ctx.home.root, "fleet", "logs", "i-0\x07bad")
    assert odd.returncode == 2 and b"not an instance id" in odd.stderr and b"\x07" not in odd.stderr


@pytest.mark.parametrize("field", ["name", "scene", "gpu"])
def test_the_api_refuses_a_name_with_a_trailing_newline(hostile: tuple[Context, dict[str, str]], field: str) -> None:
    ctx, _ = hostile
    url, headers = api(ctx)
    job = {"name": "nl", "scene": f"s3://{ctx.stacks.outputs('infra')['Bucket']}/scenes/lego", "engine": "torch"}
    job[field] = job.get(field, "0") + "\n"
    before = written(ctx)
    status, body = http("POST", url + "jobs", json.dumps(job).encode(), headers)
    assert status == 400 and body["field"] == field, body
    assert written(ctx) == before


@pytest.mark.parametrize("name", ["demo\n", "demo\x1b[2J", "de\tmo"])
def test_the_cli_refuses_a_scene_name_with_a_control_character(
    hostile: tuple[Context, dict[str, str]], tmp_path: Path, name: str
) -> None:
    ctx, _ = hostile
    made = _cli(ctx.home.root, "data", "make-scene", "demo", "--out", str(tmp_path / "scene"))
    assert made.returncode == 0, made.stderr.decode()
    pushed = _cli(ctx.home.root, "data", "push", str(tmp_path / "scene"), "--name", name)
    assert pushed.returncode == 2 and b"name" in pushed.stderr and b"Not Found" not in pushed.stderr
    submitted = _cli(ctx.home.root, "jobs", "submit", "--preset", "syn", "--scene", "lego", "--set", f"name={name}",
                     "--no-check", "--force")  # fmt: skip
    # the CLI may take `--set name=demo\n` as the shell's stray newline, but the name it keeps is clean
    assert (submitted.returncode == 2 and b"name" in submitted.stderr) or b"(demo, scene" in submitted.stdout
