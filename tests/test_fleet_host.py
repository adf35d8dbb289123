"""The fleet's user data as an instance runs it: valid shell, a pinned svox2, every package svox2's
opt.py and render_imgs.py import installed at a pinned version, the datasets brought to /data."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from backend.core.paths import stacks_dir
from backend.stacks.service import _load_template

# The third-party modules svox2's opt/opt.py, opt/render_imgs.py and opt/util/*.py import at commit
# ee80e2c (sxyu/svox2 master), and the pip package that provides each. torch and numpy come with the
# Deep Learning AMI (its CUDA build, through the venv's system site packages); svox2 is built from git.
SVOX2_IMPORTS = {
    "imageio": "imageio",
    "cv2": "opencv-python-headless",
    "torch.utils.tensorboard": "tensorboard",
    "tqdm": "tqdm",
    "lpips": "lpips",
    "matplotlib": "matplotlib",
    "scipy": "scipy",
}
FROM_THE_AMI = {"torch", "numpy"}
SVOX2_COMMIT = "ee80e2c4df8f29a407fda5729a494be94ccf9234"


def _template() -> dict[str, Any]:
    return _load_template((stacks_dir() / "fleet.yaml").read_text())


def _user_data() -> str:
    raw = _template()["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    values = {
        "Bucket": "skydeck-infra-data-123456789012-us-east-1", "ExecutorKey": "artifacts/executor-abc.zip",
        "AWS::Region": "us-east-1", "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "TableName": "skydeck-infra-jobs", "Svox2Ref": SVOX2_COMMIT, "Datasets": "bucket",
    }  # fmt: skip
    rendered = re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: values[m.group(1)], raw)
    assert "${" not in rendered.replace("${!", ""), "a placeholder the test does not know"
    return rendered


def _pins(script: str) -> dict[str, str]:
    joined = script.replace("\\\n", " ")
    line = next(li for li in joined.splitlines() if "pip install" in li and "==" in li)
    return dict(p.split("==", 1) for p in line.split() if "==" in p)


def test_the_rendered_user_data_is_valid_shell() -> None:
    checked = subprocess.run(["bash", "-n"], input=_user_data(), capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_svox2_is_pinned_and_every_package_it_imports_is_installed_at_a_pinned_version() -> None:
    params = _template()["Parameters"]
    assert params["Svox2Ref"]["Default"] == SVOX2_COMMIT
    script = _user_data()
    assert f'checkout --quiet "{SVOX2_COMMIT}"' in script
    pins = _pins(script)
    for module, package in SVOX2_IMPORTS.items():
        assert package in pins, f"svox2 imports {module}: {package} is not installed"
        assert re.fullmatch(r"\d+(\.\d+)+", pins[package]), f"{package} is not pinned to a version"
    assert not FROM_THE_AMI & set(pins), "the AMI's CUDA torch and its numpy must not be replaced"
    assert "boto3" in pins and "pillow" in pins  # the executor's own


def test_datasets_come_from_the_data_bucket_to_where_the_originals_jobs_look() -> None:
    script = _user_data()
    assert 'if [ "bucket" = "bucket" ]; then' in script
    assert 'aws s3 sync "s3://skydeck-infra-data-123456789012-us-east-1/data/" /data/' in script
    for archive in ("*.zip", "*.tar.gz"):
        assert f"/data/{archive}" in script
    assert _template()["Parameters"]["Datasets"]["AllowedValues"] == ["bucket", "none"]


def test_the_executor_service_protects_its_instance_and_the_group_scales_on_queued_plus_running() -> None:
    assert "Environment=SKYDECK_SCALE_IN_PROTECTION=1" in _user_data()
    resources = _template()["Resources"]
    metrics = resources["BacklogScaling"]["Properties"]["TargetTrackingConfiguration"]["CustomizedMetricSpecification"][
        "Metrics"
    ]
    names = {m["Id"]: m.get("MetricStat", {}).get("Metric", {}).get("MetricName") for m in metrics}
    assert names["queued"] == "ApproximateNumberOfMessagesVisible"
    assert names["running"] == "ApproximateNumberOfMessagesNotVisible"
    (answer,) = [m for m in metrics if m.get("ReturnData")]
    assert "queued + running" in answer["Expression"]


@pytest.mark.parametrize("cidr", ["", "203.0.113.0/24"])
def test_ssh_is_off_by_default_and_never_open_to_everyone(cidr: str) -> None:
    params = _template()["Parameters"]
    assert params["SshIngressCidr"]["Default"] == "" and params["KeyName"]["Default"] == ""
    assert re.fullmatch(params["SshIngressCidr"]["AllowedPattern"], cidr)
    rules = _template()["Rules"]["NoSshFromEverywhere"]["Assertions"]
    assert "0.0.0.0/0" in str(rules)
