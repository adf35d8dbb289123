"""Profiles and presets: defaults, user files, composition and the errors an operator sees."""

from __future__ import annotations

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
