"""The fleet host rehearsed (tests/fleet_rehearsal.py, `make rehearse-fleet`'s short form): the fleet's
user data and set-up script run here against a local cloud, with stubs only for the GPU, systemd and
the instance metadata. One host boots, is listed and trains a job to SUCCEEDED; one whose AMI
interpreter is Python 3.7 fails at the check, installs nothing, stops its group and says why."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.context import Context
from backend.core.paths import Home
from backend.localcloud import control
from tests.fleet_rehearsal import (
    OLD_AMI_PROFILE,
    Booted,
    Served,
    aws_cli,
    fleet_hosts,
    rehearse_a_host_that_serves,
    rehearse_an_old_interpreter,
    write_stubs,
)
from tests.test_cli import run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(aws_cli() is None, reason="no AWS CLI for the host: `make test` installs one"),
]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, Path, Path]]:
    work = tmp_path_factory.mktemp("rehearsal")
    old = os.environ.get("SKYDECK_HOME")
    os.environ["SKYDECK_HOME"] = str(work / "home")
    home = Home.from_env()
    control.up(home)
    try:
        yield home, work, write_stubs(work)
    finally:
        control.down(home)
        if old is None:
            os.environ.pop("SKYDECK_HOME", None)
        else:
            os.environ["SKYDECK_HOME"] = old


@pytest.fixture(scope="module")
def served(rehearsal: tuple[Home, Path, Path]) -> Iterator[Served]:
    home, work, stubs = rehearsal
    result = rehearse_a_host_that_serves(Context.create(None, home), work, stubs)
    yield result
    result.host.stop_service()


@pytest.fixture(scope="module")
def failed(rehearsal: tuple[Home, Path, Path]) -> Iterator[tuple[Context, Booted]]:
    home, work, stubs = rehearsal
    ctx, booted = rehearse_an_old_interpreter(home, work, stubs)
    yield ctx, booted
    booted.stop_service()


def test_a_rehearsed_host_boots_ok_serves_a_job_and_is_listed(
    served: Served, rehearsal: tuple[Home, Path, Path]
) -> None:
    home = rehearsal[0]
    record = served.host.record
    assert served.host.returncode == 0 and record["state"] == "ok", served.host.output[-3000:]
    assert [s["name"] for s in record["steps"]] == ["check", "venv", "lpips", "svox2", "datasets", "service"]
    check = record["steps"][0]["detail"]
    assert "no GPU" in check and "svox2 not built, torch engine" in check and record["engine"] == "torch"
    assert served.job is not None and served.job.state == "SUCCEEDED", served.job and served.job.error
    assert served.job.result.engine == "torch"
    # the executor ran from the environment the set-up made, on the stand-in AMI's torch
    venv = served.host.sandbox / "opt" / "skydeck" / "venv"
    pth = next(venv.glob("lib/python*/site-packages/skydeck-ami-packages.pth"))
    assert not list(pth.parent.glob("torch")), "a second torch was installed"
    listed = fleet_hosts(home)
    assert listed.returncode == 0, listed.stderr
    as_json = run(home.root, "fleet", "hosts", "--json")
    hosts = {h["instance_id"]: h for h in json.loads(as_json.stdout)["hosts"]}
    host = hosts[served.host.instance_id]
    assert host["boot_state"] == "ok" and host["in_group"] and host["engine"] == "torch"
    assert host["ami"].startswith("ami-") and host["instance_type"] == "g4dn.xlarge"
    assert host["heartbeat"], "the executor's heartbeat is not listed"
    logs = run(home.root, "fleet", "logs", served.host.instance_id)
    assert logs.returncode == 0 and "== service" in logs.stdout and "boot ok" in logs.stdout


def test_an_old_interpreter_fails_at_the_check_installs_nothing_and_stops_its_group(
    failed: tuple[Context, Booted], rehearsal: tuple[Home, Path, Path]
) -> None:
    home = rehearsal[0]
    ctx, booted = failed
    record = booted.record
    assert booted.returncode != 0 and record["state"] == "failed" and record["step"] == "check"
    assert "Python 3.7" in record["reason"] and ">= 3.10" in record["reason"]
    base = booted.sandbox / "opt" / "skydeck"
    assert not (base / "venv").exists(), "a failed boot left its environment behind"
    assert not list((booted.sandbox / "etc").rglob("*.service")), "a failed boot left its unit behind"
    group = ctx.stacks.describe("fleet").outputs["AutoScalingGroup"]
    found = ctx.clients.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    assert found["AutoScalingGroups"][0]["MaxSize"] == 0, "a broken AMI would be replaced in a loop"
    # the record in the bucket says "failed": it was sent before the group was stopped (which terminates
    # the host), and again after, with the group's stop noted
    bucket = ctx.stacks.outputs("infra")["Bucket"]
    key = f"fleet/hosts/{booted.instance_id}/boot.json"
    remote = json.loads(ctx.clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert remote["state"] == "failed" and remote["step"] == "check" and remote.get("group_stopped") in (True, "true")
    report = booted.output.index("boot failed at check")
    assert booted.output.find("could not upload boot.json", report) == -1
    tags = ctx.clients.client("ec2").describe_tags(
        Filters=[{"Name": "resource-id", "Values": [booted.instance_id]}]
    )["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}.get("skydeck:boot-step") == "check"
    listed = run(home.root, "fleet", "hosts", "--profile", OLD_AMI_PROFILE)
    assert listed.returncode == 0
    assert "failed at check" in listed.stdout and "Python 3.7" in listed.stderr
    assert "skydeck fleet resume" in listed.stderr
    as_json = json.loads(run(home.root, "fleet", "hosts", "--profile", OLD_AMI_PROFILE, "--json").stdout)
    assert as_json["stopped_after_failed_boot"] == booted.instance_id
    resumed = run(home.root, "fleet", "resume", "--yes", "--json", "--profile", OLD_AMI_PROFILE)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["max_size"] == 4
