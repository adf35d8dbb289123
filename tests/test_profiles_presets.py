"""Profiles and presets: defaults, user files, composition and the errors an operator sees."""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

import pytest

from backend.core.errors import ConfigError, NotFoundError
from backend.core.paths import Home
from backend.core.presets import compose_job, get_preset, list_presets
from backend.core.profiles import get_profile, load_profiles


def test_local_is_built_in_and_the_default() -> None:
    home = Home.from_env()
    profile = get_profile(home, None)
    assert profile.is_local and profile.name == "local" and profile.stack_name("infra") == "skydeck-infra"


def test_aws_profiles_come_from_yaml_and_bad_ones_are_explained() -> None:
    home = Home.from_env().ensure()
    home.profiles_file.write_text(
        "profiles:\n  prod:\n    region: us-west-2\n    aws_profile: research\n    stack_prefix: plx\n"
        "    params:\n      fleet: {InstanceType: g5.xlarge}\n"
    )
    prod = load_profiles(home)["prod"]
    assert (prod.kind, prod.region, prod.aws_profile, prod.stack_name("api")) == (
        "aws",
        "us-west-2",
        "research",
        "plx-api",
    )
    assert prod.params["fleet"]["InstanceType"] == "g5.xlarge"
    home.profiles_file.write_text("profiles:\n  bad:\n    region: mars-1\n")
    with pytest.raises(ConfigError, match="region must be an AWS region"):
        load_profiles(home)
    home.profiles_file.write_text("profiles:\n  bad:\n    regoin: us-east-1\n")
    with pytest.raises(ConfigError, match="unknown setting 'regoin'"):
        load_profiles(home)
    home.profiles_file.unlink()
    with pytest.raises(NotFoundError, match="no profile named 'prod'"):
        get_profile(home, "prod")


def test_presets_compose_into_a_validated_job() -> None:
    home = Home.from_env()
    assert {p.name for p in list_presets(home, "plenoxels")} >= {"syn", "llff", "tnt", "custom", "drums"}
    syn = get_preset(home, "syn")
    spec = compose_job(
        syn.values,
        scene="lego",
        overrides=["lr_sigma=10", "engine=torch", "resources.gpus=2", "lambda_tv=1e-4"],
        preset_name="syn",
    )
    assert spec.config["lr_sigma"] == 10.0 and spec.config["upsamp_every"] == 38400
    assert spec.config["lambda_tv"] == 1e-4  # a plain YAML parser would have kept "1e-4" as text
    assert spec.engine == "torch" and spec.resources.gpus == 2 and spec.preset == "syn" and spec.name == "lego"
    drums = compose_job(get_preset(home, "drums").values)
    assert drums.name == "test_synthetic_drums" and drums.scene == "drums"
    with pytest.raises(ConfigError, match="config.lambda_tv: must be >= 0"):
        compose_job(syn.values, scene="lego", overrides=["lambda_tv=-1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        compose_job(syn.values, scene="lego", overrides=["lambda_tv"])
    with pytest.raises(ConfigError, match="--kind must be one of"):
        list_presets(home, "gpu")


def test_a_broken_user_preset_is_named() -> None:
    home = Home.from_env().ensure()
    home.presets_dir.mkdir()
    (home.presets_dir / "oops.yaml").write_text("kind: plenoxels\nvalues: [1, 2]\n")
    with pytest.raises(ConfigError, match="oops.yaml: values must be a mapping"):
        list_presets(home)


def test_region_comes_from_the_profile_then_aws_region_and_the_root_option_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(tmp_path / "h")
    home.ensure()
    home.profiles_file.write_text("profiles:\n  lab:\n    kind: aws\n  pinned:\n    kind: aws\n    region: eu-west-1\n")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert get_profile(home, "lab").region == "ap-southeast-2"  # no region in the profile: the environment's
    assert get_profile(home, "pinned").region == "eu-west-1"
    monkeypatch.setenv("SKYDECK_REGION", "us-west-2")  # what `skydeck --region us-west-2` sets
    assert get_profile(home, "pinned").region == "us-west-2"
    with pytest.raises(ConfigError, match="local cloud runs in us-east-1"):
        get_profile(home, None)
    monkeypatch.setenv("SKYDECK_REGION", "mars-1")
    with pytest.raises(ConfigError, match="--region"):
        get_profile(home, "lab")


ORIGINAL_ENVIRONMENT = """S3BUCKET=my-artifacts
PROFILE=research
REGION=us-west-2
P_NAME=placeholder-no-need-to-update
INFRA_STACK=plenoxels-infra
INFRA_PARAMS="ParameterKey=pName,ParameterValue=${P_NAME}"
export P_VPC_ID=vpc-0abc123
P_SUBNET_IDS=subnet-1,subnet-2
P_INGRESS_CIDR=your-allowed-cidr-range
P_IMAGE_ID=ami-0e9d3c53b79c2cc6f
P_INSTANCE_TYPE='g5.xlarge'
P_SUBNET_SELECTION=0
P_SSH_KEY=ops-key  # the team's key
EC2_STACK=plenoxels-ec2
"""


def test_the_originals_environment_file_becomes_a_profile(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "home"
    env = {**os.environ, "SKYDECK_HOME": str(home), "COLUMNS": "300"}
    source = tmp_path / "environment.sh"
    marker = tmp_path / "ran"
    source.write_text(ORIGINAL_ENVIRONMENT + f"O_EC2=$(touch {marker})\n")

    def skydeck(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=60)

    done = skydeck("profiles", "import", str(source), "--name", "plx", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert not marker.exists(), "the file was run, not read"
    assert answer["settings"] == {
        "kind": "aws", "region": "us-west-2", "aws_profile": "research", "stack_prefix": "plenoxels",
        "params": {"fleet": {"ImageId": "ami-0e9d3c53b79c2cc6f", "InstanceType": "g5.xlarge", "VpcId": "vpc-0abc123",
                             "SubnetIds": "subnet-1,subnet-2", "KeyName": "ops-key"}},
    }  # fmt: skip
    assert answer["placeholders"] == ["P_INGRESS_CIDR"] and "P_SUBNET_SELECTION" in answer["ignored"]
    profile = get_profile(Home(home), "plx")
    assert profile.stack_name("fleet") == "plenoxels-fleet" and profile.params["fleet"]["KeyName"] == "ops-key"
    again = skydeck("profiles", "import", str(source), "--name", "plx")
    assert again.returncode == 2 and "--yes" in again.stderr  # replacing asks first
    source.write_text("REGION=us-west-2\nthis is not an assignment\n")
    broken = skydeck("profiles", "import", str(source), "--name", "other")
    assert broken.returncode == 2 and "environment.sh:2: not a KEY=VALUE line" in broken.stderr
    source.write_text("REGION=mars-1\n")
    refused = skydeck("profiles", "import", str(source), "--name", "other")
    assert refused.returncode == 2 and "region must be an AWS region" in refused.stderr


def test_the_cpu_estimate_puts_the_presets_where_they_train(tmp_path) -> None:  # noqa: ANN001
    from backend.core.paths import Home
    from backend.core.presets import compose_job, get_preset
    from backend.jobs.estimate import LAPTOP_LIMIT_S, cpu_seconds

    home = Home(tmp_path / "h")

    def seconds(name: str) -> float:
        return cpu_seconds(compose_job(get_preset(home, name).values, scene="demo", preset_name=name).config)

    assert 60 <= seconds("syn-cpu-quick") <= 300  # "about two minutes", as its description says
    assert seconds("syn-cpu") < LAPTOP_LIMIT_S < seconds("syn")
    assert seconds("syn") > 10 * 3600  # svox2's syn config: 512^3, 128,000 iterations


def test_a_preset_becomes_the_same_job_from_the_cli_and_from_the_console(tmp_path: Path) -> None:
    """One place makes a job of a preset: the composer sends every field of its form, the CLI only
    what --set changes, and both give the same job."""
    from backend.context import Context
    from backend.core.presets import job_from_preset
    from backend.interface import Backend

    home = Home(tmp_path / "h").ensure()
    preset = get_preset(home, "syn-cpu-quick")
    cli_job = job_from_preset(preset, scene="demo", overrides=["lr_sigma=12.5"])
    form = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in preset.values["config"].items()]
    form = [s for s in form if not s.startswith("lr_sigma=")] + ["lr_sigma=12.5", f"engine={preset.values['engine']}"]
    console_job = Backend(Context.create("local", home)).compose_job(preset, "demo", form)
    assert console_job.to_dict() == cli_job.to_dict()
    assert console_job.config["lr_sigma"] == 12.5 and console_job.config["n_iters"] == 1200
    with pytest.raises(ConfigError, match="is a sdsinf preset, not a training job") as refused:
        job_from_preset(get_preset(home, "c1_1024n_8w_10000bs_queue"), scene="demo")
    assert refused.value.field == "preset"


def test_ctrl_c_at_a_confirmation_is_exit_130_and_changes_nothing(tmp_path: Path) -> None:
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    env = {**os.environ, "SKYDECK_HOME": str(home), "COLUMNS": "200"}
    source = tmp_path / "environment.sh"
    source.write_text(ORIGINAL_ENVIRONMENT)
    command = [sys.executable, "-m", "cli", "profiles", "import", str(source), "--name", "plx"]
    assert subprocess.run(command, env=env, capture_output=True, timeout=60).returncode == 0
    before = (home / "profiles.yaml").read_bytes()
    source.write_text(ORIGINAL_ENVIRONMENT.replace("g5.xlarge", "g4dn.xlarge"))
    parent, child = pty.openpty()  # the question is only asked on a terminal
    # Ctrl-C as a terminal sends it, whatever this test run inherited: a run started in the background
    # of a shell ignores SIGINT, and so would the command (Python keeps an ignored SIGINT ignored)
    proc = subprocess.Popen(
        command, stdin=child, stdout=child, stderr=child, env=env, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.close(child)
    seen, deadline = b"", time.time() + 60
    try:
        while b"replace the profile" not in seen and time.time() < deadline:
            if select.select([parent], [], [], 1.0)[0]:
                seen += os.read(parent, 4096)
        assert b"replace the profile" in seen, seen
        # the prompt is on the screen a moment before the command waits on the terminal; a Ctrl-C in
        # that moment is only noticed by CPython once input arrives, so, as a person would, press it
        # again until the command answers (a busy machine widens that moment)
        pressed_until = time.time() + 60
        while proc.poll() is None and time.time() < pressed_until:
            proc.send_signal(signal.SIGINT)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        assert proc.wait(timeout=5) == 130
        while select.select([parent], [], [], 0.5)[0]:
            try:
                seen += os.read(parent, 4096)
            except OSError:  # the terminal closed with the process
                break
    finally:
        proc.kill()
        os.close(parent)
    assert b"nothing was changed" in seen and b"Aborted!" not in seen and b"Traceback" not in seen
    assert (home / "profiles.yaml").read_bytes() == before
