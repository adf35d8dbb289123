"""A fleet host's boot, rehearsed on this machine against the local cloud.

The fleet stack is deployed on the local cloud; its launch template's user data - as the local
cloud's CloudFormation rendered it - runs here under a sandbox root, and with it the host set-up
script, the executor it installs and the job that executor serves. Stubs stand in only for what
cannot exist here:
- `nvidia-smi` and `nvcc` (no GPU: the set-up reports "no GPU: svox2 not built, torch engine");
- `systemctl` (starts the unit's ExecStart with the unit's environment, and answers is-active);
- the instance metadata service (a local HTTP stub: IMDSv2 token, instance-id, ami-id, instance-type).
The AMI's PyTorch interpreter is this project's Python 3.11 with CPU torch; the AWS CLI is the real
one (v1, from PyPI, in .venv-awscli) pointed at the local cloud.

    python -m tests.fleet_rehearsal            what `make rehearse-fleet` runs: both rehearsals
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from backend.context import Context
from backend.core.aws import local_endpoint
from backend.core.paths import Home
from backend.localcloud.executors import instance_env
from lambda_src.jobs.record import JobRecord

ROOT = Path(__file__).resolve().parents[1]


def aws_cli() -> Path | None:
    """The AWS CLI the rehearsal's host uses: the project's own (make), else one on PATH."""
    own = ROOT / ".venv-awscli" / "bin" / "aws"
    if own.exists():
        return own
    found = shutil.which("aws")
    return Path(found) if found else None


# -- the stubs ---------------------------------------------------------------------------------------
SYSTEMCTL = r'''#!/usr/bin/env python3
"""systemctl, as far as skydeck's host set-up uses it: the unit's ExecStart, started in the background."""
import os, signal, subprocess, sys
root = os.environ.get("SKYDECK_HOST_ROOT", "")
args = [a for a in sys.argv[1:] if not a.startswith("--") and a != "--now"]
verb, name = (args + ["", ""])[:2]
unit = f"{root}/etc/systemd/system/{name}"
pidfile = f"{root}/run/{name}.pid"
logfile = f"{root}/var/log/{name}.log"

def pid():
    try:
        p = int(open(pidfile).read())
        os.kill(p, 0)
        return p
    except (OSError, ValueError):
        return None

if verb == "daemon-reload":
    sys.exit(0)
if verb == "enable":
    env, command = dict(os.environ), None
    for line in open(unit):
        line = line.strip()
        if line.startswith("Environment="):
            k, _, v = line[len("Environment="):].partition("=")
            env[k] = v
        elif line.startswith("ExecStart="):
            command = line[len("ExecStart="):].split()
    os.makedirs(os.path.dirname(pidfile), exist_ok=True)
    os.makedirs(os.path.dirname(logfile), exist_ok=True)
    proc = subprocess.Popen(command, env=env, stdout=open(logfile, "ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    open(pidfile, "w").write(str(proc.pid))
    sys.exit(0)
if verb == "is-active":
    sys.exit(0 if pid() else 3)
if verb == "disable":
    p = pid()
    if p:
        os.kill(p, signal.SIGTERM)
    sys.exit(0)
if verb == "status":
    print(open(logfile).read()[-2000:] if os.path.exists(logfile) else "no log")
    sys.exit(0 if pid() else 3)
sys.exit(f"systemctl stub: {verb} is not rehearsed")
'''
NVIDIA_SMI = "#!/bin/sh\necho 'NVIDIA-SMI has failed: no NVIDIA driver (rehearsal stand-in)'\nexit 9\n"
NVCC = "#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver (rehearsal stand-in), release 12.6'\n"
PY37_SITE = "import sys\nsys.version_info = (3, 7, 17, 'final', 0)\nsys.version = '3.7.17 (rehearsal stand-in)'\n"


def write_stubs(where: Path) -> Path:
    """The stub commands (and an AWS CLI link) in `where`/bin, for the front of PATH."""
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("systemctl", SYSTEMCTL), ("nvidia-smi", NVIDIA_SMI), ("nvcc", NVCC)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    cli = aws_cli()
    if cli is not None and not (bin_dir / "aws").exists():
        (bin_dir / "aws").symlink_to(cli)
    return bin_dir


def python37_standin(where: Path) -> Path:
    """An interpreter that says it is Python 3.7 (the original's base DLAMI), for the failing rehearsal."""
    site = where / "py37-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(PY37_SITE)
    python = where / "py37" / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return python


# -- one host --------------------------------------------------------------------------------------
@dataclass
class Booted:
    instance_id: str
    sandbox: Path
    returncode: int
    output: str

    @property
    def record(self) -> dict:
        path = self.sandbox / "opt" / "skydeck" / "boot" / "boot.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def stop_service(self, grace_s: float = 20.0) -> None:
        """Stop the executor the systemctl stub started: SIGTERM, then SIGKILL after `grace_s`."""
        pidfile = self.sandbox / "run" / "skydeck-executor.service.pid"
        if not pidfile.exists():
            return
        with suppress(OSError, ValueError):
            group = int(pidfile.read_text())
            os.killpg(group, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                os.killpg(group, 0)  # raises once the group is gone
                time.sleep(0.2)
            os.killpg(group, signal.SIGKILL)


def user_data(ctx: Context) -> str:
    """The fleet's user data as the local cloud's CloudFormation rendered it into the launch template."""
    template_id = ctx.stacks.describe("fleet").outputs["LaunchTemplateId"]
    versions = ctx.clients.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    return base64.b64decode(versions[0]["LaunchTemplateData"]["UserData"]).decode()


def group_instances(ctx: Context) -> list[dict]:
    group = ctx.stacks.describe("fleet").outputs["AutoScalingGroup"]
    found = ctx.clients.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return found["AutoScalingGroups"][0]["Instances"]


def boot(ctx: Context, instance_id: str, sandbox: Path, stubs: Path, timeout_s: float = 1200) -> Booted:
    """Run the fleet's user data for `instance_id` under `sandbox`, as cloud-init would on the host."""
    sandbox.mkdir(parents=True, exist_ok=True)
    # the host is who the local cloud's metadata service says it is: instance id, AMI, type, and the
    # fleet's instance role, whose temporary credentials are all it has (no keys in its environment)
    imds = json.loads(ctx.home.local_state_file.read_text())["imds"] + "/" + instance_id
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SKYDECK_", "VIRTUAL_ENV"))},
        **instance_env(imds),
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "AWS_DEFAULT_REGION": ctx.profile.region, "AWS_ENDPOINT_URL": local_endpoint(ctx.home),
        "SKYDECK_HOST_ROOT": str(sandbox), "SKYDECK_REQUIRE_GPU": "0",
        "HOME": str(sandbox / "root"),
    }  # fmt: skip
    done = subprocess.run(
        ["bash", "-c", user_data(ctx)], env=env, cwd=sandbox, capture_output=True, text=True, timeout=timeout_s
    )
    return Booted(instance_id, sandbox, done.returncode, done.stdout + done.stderr)


OLD_AMI_PROFILE = "old-ami"


@dataclass
class Served:
    host: Booted
    job: JobRecord | None  # None: the host never booted, so nothing was submitted


def rehearse_a_host_that_serves(ctx: Context, work: Path, stubs: Path) -> Served:
    """Deploy the fleet (one instance), boot it here, and have its executor train a small job."""
    from gpu_executor.plenoxels.scene import make_scene
    from lambda_src.jobs.schema import parse_job

    ctx.stacks.deploy("infra")
    ctx.stacks.deploy("fleet", {"MinSize": "1", "PytorchPython": sys.executable})
    [instance] = group_instances(ctx)
    host = boot(ctx, instance["InstanceId"], work / "host-ok", stubs)
    if host.record.get("state") != "ok":
        return Served(host, None)
    make_scene("rehearsal", work / "scene", size=32, views=12, test_views=2)
    ctx.scenes.push(work / "scene", "rehearsal")
    config = {"reso": "[[32, 32, 32]]", "n_iters": 150, "batch_size": 2000, "lambda_tv": 0.0, "lambda_tv_sh": 0.0}
    job_id = ctx.jobs.store.submit(parse_job({"scene": "rehearsal", "engine": "torch", "config": config})).job_id
    deadline = time.monotonic() + 900
    while ctx.jobs.store.get(job_id).state not in ("SUCCEEDED", "FAILED", "CANCELLED"):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    return Served(host, ctx.jobs.store.get(job_id))


def rehearse_an_old_interpreter(home: Home, work: Path, stubs: Path) -> tuple[Context, Booted]:
    """A second fleet (its own stack prefix, profile `old-ami`) whose AMI interpreter is Python 3.7."""
    python37 = python37_standin(work)
    home.profiles_file.write_text(
        f"profiles:\n  {OLD_AMI_PROFILE}:\n    kind: local\n    stack_prefix: oldami\n"
        f"    params:\n      fleet:\n        MinSize: '1'\n        PytorchPython: '{python37}'\n"
    )
    ctx = Context.create(OLD_AMI_PROFILE, home)
    ctx.stacks.deploy("infra")
    ctx.stacks.deploy("fleet")
    [instance] = group_instances(ctx)
    return ctx, boot(ctx, instance["InstanceId"], work / "host-py37", stubs)


def remote_record(ctx: Context, instance_id: str) -> dict:
    """The boot record the host left in the bucket (what `skydeck fleet hosts` reads)."""
    bucket = ctx.stacks.outputs("infra")["Bucket"]
    body = ctx.clients.client("s3").get_object(Bucket=bucket, Key=f"fleet/hosts/{instance_id}/boot.json")["Body"]
    return dict(json.loads(body.read()))


def fleet_hosts(home: Home, profile: str | None = None) -> subprocess.CompletedProcess[str]:
    """`skydeck fleet hosts` as an operator runs it."""
    args = [sys.executable, "-m", "cli", "fleet", "hosts"] + (["--profile", profile] if profile else [])
    env = {**os.environ, "SKYDECK_HOME": str(home.root)}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def main() -> int:
    """Both rehearsals on a local cloud of their own: a host that boots and serves a job, then one whose
    interpreter is Python 3.7 and fails at the check, stopping its group."""
    from backend.localcloud import control

    if aws_cli() is None:
        print("no AWS CLI: run `make rehearse-fleet` (it makes .venv-awscli)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="skydeck-rehearsal-"))
    os.environ["SKYDECK_HOME"] = str(work / "home")
    os.environ["SKYDECK_LOCAL_WORKERS"] = "0"
    home = Home.from_env()
    control.up(home)
    booted: list[Booted] = []
    try:
        stubs = write_stubs(work)
        started = time.monotonic()
        served = rehearse_a_host_that_serves(Context.create(None, home), work, stubs)
        booted.append(served.host)
        print(served.host.output[-3000:])
        print(f"boot: {served.host.record.get('state')} (rc {served.host.returncode})")
        job = served.job
        if job is not None:
            print(f"job {job.job_id}: {job.state} psnr {job.result.psnr if job.result else None}")
        print(f"in {time.monotonic() - started:.0f} s")
        listing = fleet_hosts(home)
        print(textwrap.indent(listing.stdout + listing.stderr, "  "))
        served.host.stop_service()
        old_ctx, failed = rehearse_an_old_interpreter(home, work, stubs)
        booted.append(failed)
        print(failed.output[-2000:])
        record = remote_record(old_ctx, failed.instance_id)  # what the bucket holds once the group has stopped
        print(f"boot: {record.get('state')} at {record.get('step')}: {record.get('reason')}")
        print(f"group stopped: {record.get('group_stopped', 'no')}; the record in the bucket is the final one")
        listing = fleet_hosts(home, OLD_AMI_PROFILE)
        print(textwrap.indent(listing.stdout + listing.stderr, "  "))
        served_ok = job is not None and job.state == "SUCCEEDED"
        ok = served_ok and record.get("state") == "failed" and record.get("step") == "check"
        print("rehearsal passed" if ok else "rehearsal FAILED")
        return 0 if ok else 1
    finally:
        for each in booted:
            each.stop_service()
        control.down(home)
        _leave(work)


def _leave(work: Path) -> None:
    """The sandboxes hold two environments and a local cloud's journal (about 230 MB): removed, unless
    SKYDECK_KEEP_REHEARSAL=1 asks to look at them, and either way said."""
    held = sum(p.stat().st_size for p in work.rglob("*") if p.is_file() and not p.is_symlink())
    if os.environ.get("SKYDECK_KEEP_REHEARSAL") == "1":
        print(f"kept the rehearsal's sandboxes ({held / 1e6:.0f} MB) in {work}")
        return
    shutil.rmtree(work, ignore_errors=True)
    print(f"removed the rehearsal's sandboxes ({held / 1e6:.0f} MB) from {work}; SKYDECK_KEEP_REHEARSAL=1 keeps them")


if __name__ == "__main__":
    sys.exit(main())
