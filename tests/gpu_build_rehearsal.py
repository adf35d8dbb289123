"""svox2's build on a fleet host, rehearsed on this machine with no GPU (`make rehearse-gpu-build`).

A recent Deep Learning AMI keeps no /usr/local/cuda: its PyTorch environment (/opt/pytorch) has the CUDA
build of torch from PyPI, and nvcc comes as NVIDIA's wheels under site-packages/nvidia/cu13. This lays
out such an environment in a sandbox (kept between runs: it is about 5 GB of wheels), hides every other
nvcc on the machine, then runs the host's own setup.sh steps `check venv svox2` against it, at the
commit the fleet stack pins. The GPU is the one thing taken on trust (SKYDECK_REHEARSE_CUDA=1, said in
the log); everything else is the host's script, compiler and linker. It ends with what a host runs
next: `import svox2.csrc` and svox2's own opt.py and render_imgs.py `--help`.

About 20 minutes with one compile job (SKYDECK_BUILD_JOBS, default 1) and 6 GB of disk. Not part of
`make test`. Settings: SVOX2_SOURCE (a checkout or a git URL; default GitHub), SKYDECK_CUDA_ARCH
(default 9.0, an H100's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "third_party" / "gpu-rehearsal"
AMI = WORK / "opt" / "pytorch"  # the DLAMI's PyTorch environment, as it lays it out
HOST = WORK / "host"  # the host's root: /opt/skydeck and /data go under it
SVOX2 = REPO / "third_party" / "svox2"
# the DLAMI for PyTorch 2.13 (Amazon Linux 2023): its torch, torchvision and CUDA, all from PyPI wheels
AMI_PACKAGES = ("torch==2.13.0", "torchvision==0.28.0", "numpy==2.4.1", "cuda-toolkit[nvcc,cudart,cccl,crt]==13.0.3")


@dataclass
class Outcome:
    svox2_ref: str
    torch: str
    nvcc: str
    nvcc_version: str
    arch: str
    build_jobs: int
    seconds: dict[str, float]
    import_csrc: bool
    opt_help: bool
    render_help: bool


def pinned_ref() -> str:
    template = yaml.load((REPO / "stacks" / "fleet.yaml").read_text(), Loader=_CfnLoader)
    return str(template["Parameters"]["Svox2Ref"]["Default"])


class _CfnLoader(yaml.SafeLoader):
    """Reads a CloudFormation template: its short-form intrinsics (!If, !Sub, ...) as plain values."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def pypi_env() -> dict[str, str]:
    """pip as on the AMI: PyPI itself, not this machine's CPU wheels or its pip config."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def ami_python() -> Path:
    return AMI / "bin" / "python"


def make_ami(env: dict[str, str]) -> float:
    """The AMI's environment, made once; a later run reuses it when it holds the same packages."""
    stamp = AMI / "skydeck-packages.txt"
    if stamp.exists() and stamp.read_text() == "\n".join(AMI_PACKAGES):
        print(f"AMI environment: {AMI} (kept from an earlier run)")
        return 0.0
    started = time.monotonic()
    shutil.rmtree(AMI, ignore_errors=True)
    AMI.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(AMI)], check=True)
    print(f"AMI environment: installing {' '.join(AMI_PACKAGES)} from PyPI (about 5 GB)", flush=True)
    subprocess.run(
        [str(ami_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *AMI_PACKAGES],
        check=True,
        env=env,
    )
    stamp.write_text("\n".join(AMI_PACKAGES))
    return time.monotonic() - started


def svox2_source(ref: str) -> Path:
    """svox2 at the pinned commit, in a git-ignored folder."""
    if not (SVOX2 / ".git").exists():
        url = os.environ.get("SVOX2_SOURCE", "https://github.com/sxyu/svox2.git")
        subprocess.run(["git", "clone", "--quiet", url, str(SVOX2)], check=True)
    subprocess.run(["git", "-C", str(SVOX2), "checkout", "--quiet", ref], check=True)
    return SVOX2


def without_nvcc(path: str) -> str:
    """PATH with every folder that holds an nvcc taken out: the host's AMI has none there."""
    return os.pathsep.join(d for d in path.split(os.pathsep) if d and not (Path(d) / "nvcc").exists())


def run_setup(env: dict[str, str], ref: str, arch: str, jobs: int) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(HOST, ignore_errors=True)
    HOST.mkdir(parents=True)
    host_env = {k: v for k, v in env.items() if not k.startswith(("SKYDECK_", "CUDA_", "AWS_"))}
    host_env.update(
        {
            "PATH": without_nvcc(env.get("PATH", "")),
            "SKYDECK_HOST_ROOT": str(HOST),
            "SKYDECK_PYTHON": str(ami_python()),
            "SKYDECK_SYSTEM_CUDA": str(HOST / "usr" / "local" / "cuda"),  # absent, as on the AMI
            "SKYDECK_REQUIRE_GPU": "1",
            "SKYDECK_REHEARSE_CUDA": "1",
            "SKYDECK_CUDA_ARCH": arch,
            "SKYDECK_BUILD_JOBS": str(jobs),
            "SKYDECK_SVOX2_REF": ref,
            "SKYDECK_SVOX2_SOURCE": str(SVOX2),
            "SKYDECK_IMDS": "http://127.0.0.1:9",  # no instance metadata here: the record says unknown
        }
    )
    script = REPO / "gpu_executor" / "host" / "setup.sh"
    return subprocess.run(
        ["bash", str(script), "check", "venv", "svox2"],
        env=host_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def svox2_runs(venv_python: Path, svox2: Path) -> dict[str, bool]:
    """What a host runs after the build: the extension's import and svox2's own scripts' --help."""
    checks = {
        "import_csrc": [str(venv_python), "-c", "import svox2.csrc"],
        "opt_help": [str(venv_python), "opt.py", "--help"],
        "render_help": [str(venv_python), "render_imgs.py", "--help"],
    }
    ran = {}
    for name, argv in checks.items():
        done = subprocess.run(argv, cwd=svox2 / "opt", text=True, capture_output=True)
        ran[name] = done.returncode == 0
        last = (done.stdout + done.stderr).strip().splitlines()
        said = f" ({last[-1][:160]})" if last and done.returncode else ""
        print(f"{' '.join(argv[1:])}: exit {done.returncode}{said}")
    return ran


def main() -> int:
    env = pypi_env()
    ref = pinned_ref()
    arch = os.environ.get("SKYDECK_CUDA_ARCH", "9.0")
    jobs = int(os.environ.get("SKYDECK_BUILD_JOBS", "1"))
    seconds = {"ami_environment": round(make_ami(env), 1)}
    svox2_source(ref)
    print(
        f"setup.sh check venv svox2: svox2 {ref[:7]}, arch {arch}, {jobs} compile job(s) (about 20 minutes)", flush=True
    )
    started = time.monotonic()
    done = run_setup(env, ref, arch, jobs)
    seconds["setup_steps"] = round(time.monotonic() - started, 1)
    print("\n".join(done.stdout.splitlines()[-25:]))
    boot = json.loads((HOST / "opt" / "skydeck" / "boot" / "boot.json").read_text())
    for step in boot.get("steps", []):
        if "seconds" in step:
            seconds[step["name"]] = step["seconds"]
    if done.returncode != 0:
        print(f"setup.sh failed (exit {done.returncode}); its log: {HOST / 'opt/skydeck/boot/boot.log'}")
        return 1
    ran = svox2_runs(HOST / "opt" / "skydeck" / "venv" / "bin" / "python", HOST / "data" / "svox2")
    notes = boot  # check notes what it found at the record's top level
    outcome = Outcome(
        svox2_ref=ref,
        torch=str(notes.get("torch", "")),
        nvcc=str(notes.get("nvcc", "")),
        nvcc_version=str(notes.get("nvcc_version", "")),
        arch=arch,
        build_jobs=jobs,
        seconds=seconds,
        **ran,
    )
    (WORK / "last-run.json").write_text(json.dumps(asdict(outcome), indent=2) + "\n")
    print(json.dumps(asdict(outcome), indent=2))
    return 0 if all(ran.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
