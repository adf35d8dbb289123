"""The fleet's template and host set-up as an instance runs them: the AMI from the DLAMI's public SSM
parameter, the root device by its real name, user data that hands over to the set-up script, a pinned
svox2, every package svox2's opt.py and render_imgs.py import pinned, and never a second torch."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backend.core.paths import stacks_dir
from backend.stacks.service import _load_template

HOST = Path(__file__).resolve().parents[1] / "gpu_executor" / "host"

# The third-party modules svox2's opt/opt.py, opt/render_imgs.py and opt/util/*.py import at commit
# ee80e2c (sxyu/svox2 master), and the pip package that provides each. torch, torchvision and numpy come
# with the Deep Learning AMI (its CUDA build); svox2 is built from git.
SVOX2_IMPORTS = {
    "imageio": "imageio",
    "cv2": "opencv-python-headless",
    "torch.utils.tensorboard": "tensorboard",
    "tqdm": "tqdm",
    "matplotlib": "matplotlib",
    "scipy": "scipy",
}
FROM_THE_AMI = {"torch", "torchvision", "numpy"}
SVOX2_COMMIT = "ee80e2c4df8f29a407fda5729a494be94ccf9234"


def _template() -> dict[str, Any]:
    return _load_template((stacks_dir() / "fleet.yaml").read_text())


def _user_data() -> str:
    """The user data rendered as CloudFormation's Fn::Sub would: ${Name} replaced, ${!Name} kept as ${Name}."""
    raw = _template()["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    values = {
        "Bucket": "skydeck-infra-data-123456789012-us-east-1", "ExecutorKey": "artifacts/executor-abc.zip",
        "AWS::Region": "us-east-1", "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "TableName": "skydeck-infra-jobs", "Svox2Ref": SVOX2_COMMIT, "Datasets": "bucket",
        "AWS::StackName": "skydeck-fleet", "PytorchPython": "/opt/pytorch/bin/python",
    }  # fmt: skip
    rendered = re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: values[m.group(1)], raw)
    return rendered.replace("${!", "${")


def _pins(*names: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for name in names:
        for line in (HOST / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                package, _, version = line.partition("==")
                pins[package.lower()] = version
    return pins


def test_the_ami_comes_from_the_dlami_parameter_or_an_explicit_id_and_the_root_is_xvda() -> None:
    params = _template()["Parameters"]
    # a String read by a dynamic reference in the If's branch: never resolved when ImageId is given
    assert params["ImageParameter"]["Type"] == "String"
    assert params["ImageParameter"]["Default"] == (
        "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.13-amazon-linux-2023/latest/ami-id"
    )
    assert params["ImageId"]["Default"] == "" and re.fullmatch(params["ImageId"]["AllowedPattern"], "ami-0abc1234")
    data = _template()["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["ImageId"] == ["HasImageId", "ImageId", "{{resolve:ssm:${ImageParameter}}}"]
    [root] = data["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/xvda"
    assert root["Ebs"]["VolumeSize"] == "RootVolumeGiB" and root["Ebs"]["Encrypted"] is True
    assert params["PytorchPython"]["Default"] == "/opt/pytorch/bin/python"


def test_the_rendered_user_data_is_valid_shell_and_hands_over_to_the_set_up_script() -> None:
    script = _user_data()
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert script.rstrip().endswith('exec bash "$root/opt/skydeck/app/gpu_executor/host/setup.sh"')
    assert 'SKYDECK_PYTHON="/opt/pytorch/bin/python"' in script and 'SKYDECK_GROUP="skydeck-fleet-executors"' in script
    checked = subprocess.run(["bash", "-n", str(HOST / "setup.sh")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_svox2_is_pinned_and_every_package_it_imports_is_pinned_and_the_amis_torch_is_never_replaced() -> None:
    params = _template()["Parameters"]
    assert params["Svox2Ref"]["Default"] == SVOX2_COMMIT
    setup = (HOST / "setup.sh").read_text()
    assert 'checkout --quiet "$ref"' in setup and "--no-build-isolation" in setup
    pins = _pins("requirements-executor.txt", "requirements-svox2.txt")
    for module, package in SVOX2_IMPORTS.items():
        assert package in pins, f"svox2 imports {module}: {package} is not installed"
        assert re.fullmatch(r"\d+(\.\d+)+(\.post\d+)?", pins[package]), f"{package} is not pinned to a version"
    assert not FROM_THE_AMI & set(pins), "the AMI's CUDA torch, torchvision and numpy must not be replaced"
    assert "boto3" in pins and "pillow" in pins  # the executor's own
    # lpips goes in without dependencies, and the constraints hold torch/torchvision/numpy at the AMI's
    assert '--no-deps ${SKYDECK_PIP_ARGS:-} \\\n    "lpips==$LPIPS_VERSION"' in setup
    assert '-c "$BASE/ami-constraints.txt"' in setup


def test_datasets_come_from_the_data_bucket_with_the_executors_boto3() -> None:
    setup = (HOST / "setup.sh").read_text()
    assert "-m gpu_executor.host.datasets" in setup and "aws s3 sync" not in setup
    assert _template()["Parameters"]["Datasets"]["AllowedValues"] == ["bucket", "none"]


def test_the_executor_service_protects_its_instance_and_the_group_scales_on_queued_plus_running() -> None:
    assert "Environment=SKYDECK_SCALE_IN_PROTECTION=1" in (HOST / "setup.sh").read_text()
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


def test_the_instance_type_is_one_the_ami_supports_and_the_refusal_names_the_families() -> None:
    rule = _template()["Parameters"]["InstanceType"]
    for ok in ("g4dn.xlarge", "g5.12xlarge", "g6e.2xlarge", "p4d.24xlarge", "p5.48xlarge", "p6-b200.48xlarge"):
        assert re.fullmatch(rule["AllowedPattern"], ok), ok
    for refused in ("t3.micro", "m5.large", "g3.4xlarge", "p3.2xlarge", "g4dn"):
        assert not re.fullmatch(rule["AllowedPattern"], refused), refused
    assert "G4dn, G5, G6" in rule["ConstraintDescription"] and "P6-B200" in rule["ConstraintDescription"]


def _pip_cuda(root: Path) -> tuple[Path, Path]:
    """The PyTorch environment of a recent DLAMI: nvcc in NVIDIA's wheels (nvidia/cu13), lib but no lib64."""
    site = root / "opt" / "pytorch" / "lib" / "python3.12" / "site-packages"
    cu13 = site / "nvidia" / "cu13"
    for folder in ("bin", "lib", "include", "nvvm"):
        (cu13 / folder).mkdir(parents=True)
    (cu13 / "bin" / "nvcc").write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0, V13.0.88'\n")
    (cu13 / "bin" / "nvcc").chmod(0o755)
    (cu13 / "bin" / "nvcc.profile").write_text("TOP = $(_HERE_)/..\n")
    (cu13 / "lib" / "libcudadevrt.a").write_bytes(b"!<arch>\n")
    (cu13 / "lib" / "libcudart.so.13").write_bytes(b"\x7fELF")  # the runtime's versioned name only, as the wheel has
    python = root / "python"
    python.write_text(f"#!/bin/sh\necho {site}\n")  # all the set-up asks it here: its purelib
    python.chmod(0o755)
    return python, cu13


def _cuda_sh(python: Path, base: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    # no /usr/local/cuda: this machine may have one, a recent DLAMI does not
    clean = {
        "PATH": "/usr/bin:/bin",
        "PY": str(python),
        "BASE": str(base),
        "SKYDECK_SYSTEM_CUDA": "/nonexistent",
        **env,
    }
    return subprocess.run(
        ["bash", "-c", f'. "{HOST / "cuda.sh"}"; {script}'], env=clean, capture_output=True, text=True, timeout=60
    )


def test_nvcc_only_in_the_pytorch_environments_wheels_is_found_and_given_a_cuda_home_that_links(tmp_path: Path) -> None:
    python, cu13 = _pip_cuda(tmp_path)
    found = _cuda_sh(python, tmp_path / "base", 'n=$(find_nvcc) && echo "$n" && cuda_home "$n"')
    assert found.returncode == 0, found.stderr
    nvcc, home = found.stdout.split()
    assert Path(nvcc) == cu13 / "bin" / "nvcc"
    home_path = Path(home)
    # bin linked file by file (nvcc.profile's TOP is then the made home, which has lib64), not as a whole
    assert not (home_path / "bin").is_symlink() and (home_path / "bin" / "nvcc").is_symlink()
    assert (home_path / "lib64" / "libcudadevrt.a").resolve() == (cu13 / "lib" / "libcudadevrt.a").resolve()
    assert (home_path / "nvvm").resolve() == (cu13 / "nvvm").resolve()
    # -lcudart finds libcudart.so: the wheel has only libcudart.so.13 (the link failed without it)
    assert (home_path / "lib64" / "libcudart.so").resolve() == (cu13 / "lib" / "libcudart.so.13").resolve()
    # $CUDA_HOME comes first, then PATH, then /usr/local/cuda, then the wheels
    other = tmp_path / "toolkit"
    (other / "bin").mkdir(parents=True)
    (other / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (other / "bin" / "nvcc").chmod(0o755)
    (other / "lib64").mkdir()
    first = _cuda_sh(python, tmp_path / "base", 'n=$(find_nvcc) && cuda_home "$n"', CUDA_HOME=str(other))
    assert first.stdout.strip() == str(other)
    on_path = _cuda_sh(python, tmp_path / "base", "find_nvcc", PATH=f"{other / 'bin'}:/usr/bin:/bin")
    assert on_path.stdout.strip() == str(other / "bin" / "nvcc")
