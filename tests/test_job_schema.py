"""The job document: every original job file is accepted; everything else is refused by field."""

from __future__ import annotations

import json

import pytest

from lambda_src.jobs.schema import MAX_BODY_BYTES, JobValidationError, parse_body, parse_job, parse_reso
from tests.conftest import SEED_JOBS


def test_all_thirteen_original_job_files_are_accepted() -> None:
    assert len(SEED_JOBS) == 13
    for path in SEED_JOBS:
        raw = json.loads(path.read_text())
        spec = parse_body(path.read_bytes())
        assert spec.name == raw["command"][1]
        assert spec.gpu == raw["command"][2]
        assert spec.scene == raw["command"][3]
        assert spec.engine == "auto"
        assert set(spec.config) == set(raw["config"])


def test_seed_body_maps_onto_the_job_document() -> None:
    spec = parse_job(
        {
            "command": ["/data/svox2/opt/launch_auto.sh", "test_synthetic_drums", "00:1e.0", "/data/drums", "-c"],
            "config": {"reso": "[[256, 256, 256], [512, 512, 512]]", "lr_sigma": 3e1, "upsamp_every": 38400},
        }
    )
    assert spec.name == "test_synthetic_drums"
    assert spec.scene == "/data/drums"
    assert parse_reso(spec.config["reso"]) == [[256, 256, 256], [512, 512, 512]]
    assert spec.config["lr_sigma"] == 30.0
    full = spec.full_config()
    assert full["lr_sh"] == 0.01 and full["upsamp_every"] == 38400  # svox2's default beside the override


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"command": ["/bin/rm", "-rf", "/", "x", "-c"], "config": {}}, "command[0]", "unknown command"),
        ({"command": ["launch_auto.sh", "a", "0", "/d", "-c", "--evil"], "config": {}}, "command", "got 6 items"),
        ({"command": ["launch_auto.sh", "a; rm -rf /", "0", "/d", "-c"], "config": {}}, "command[1]", "letters"),
        ({"command": "launch_auto.sh a 0 /d -c", "config": {}}, "command", "list of strings"),
        ({"scene": "lego", "config": {"lr_sigmaa": 1}}, "config.lr_sigmaa", "unknown svox2 option"),
        ({"scene": "lego", "config": {"upsamp_every": "often"}}, "config.upsamp_every", "integer"),
        ({"scene": "lego", "config": {"lr_sigma": -1}}, "config.lr_sigma", ">= 0"),
        ({"scene": "lego", "config": {"lr_sigma": True}}, "config.lr_sigma", "number"),
        ({"scene": "lego", "config": {"n_iters": 0}}, "config.n_iters", ">= 1"),
        ({"scene": "lego", "config": {"reso": "[[256, 256]]"}}, "config.reso[0]", "three integers"),
        ({"scene": "lego", "config": {"reso": "[[99999, 1, 1]]"}}, "config.reso[0]", "between 1 and"),
        ({"scene": "lego", "config": {"thresh_type": "magic"}}, "config.thresh_type", "one of"),
        ({"scene": "lego", "config": {"last_sample_opaque": "no"}}, "config.last_sample_opaque", "true or false"),
        ({"scene": "lego", "engine": "tensorflow"}, "engine", "one of"),
        ({"scene": "lego", "resources": {"gpus": 99}}, "resources.gpus", "<= 8"),
        ({"scene": "../../etc"}, "scene", "scene name"),
        ({"config": {}}, "scene", "required"),
        ({"scene": "lego", "shell": "rm"}, "shell", "unknown key"),
        ([1, 2], "body", "JSON object"),
    ],
)
def test_invalid_jobs_are_refused_naming_the_field(body: object, field: str, words: str) -> None:
    with pytest.raises(JobValidationError) as info:
        parse_job(body)
    assert info.value.field == field
    assert words in info.value.message


def test_body_limits_and_bad_json() -> None:
    with pytest.raises(JobValidationError, match="limit is"):
        parse_body(b"{" + b" " * MAX_BODY_BYTES + b"}")
    with pytest.raises(JobValidationError, match="not valid JSON"):
        parse_body(b"{not json")
    with pytest.raises(JobValidationError, match="empty"):
        parse_body(b"")


def test_the_originals_validation_command_is_a_validation_only_job() -> None:
    from lambda_src.jobs.schema import JobValidationError, parse_job

    ckpt = "/data/svox2/opt/ckpt/$test_synthetic_drums/ckpt.npz"
    spec = parse_job({"command": ["python", "/data/svox2/opt/render_imgs.py", ckpt, "/data/nerf_synthetic/drums"]})
    assert spec.validation_only and spec.checkpoint == ckpt
    assert spec.name == "validate-test_synthetic_drums" and spec.scene == "/data/nerf_synthetic/drums"
    refusals = [
        (["bash", "/data/svox2/opt/render_imgs.py", ckpt, "/data/x"], "command[0]"),
        (["python", "/data/svox2/opt/render_imgs.py", ckpt], "command"),
        (["python", "/data/svox2/opt/render_imgs.py", "/etc/passwd", "/data/x"], "command[2]"),
        (["python", "/data/svox2/opt/render_imgs.py", "s3://b/../k", "/data/x"], "command[2]"),
    ]
    for command, field in refusals:
        with pytest.raises(JobValidationError) as refused:
            parse_job({"command": command})
        assert refused.value.field == field, (command, refused.value)
    with pytest.raises(JobValidationError) as refused:
        parse_job({"scene": "lego", "checkpoint": "not a reference"})
    assert refused.value.field == "checkpoint"
