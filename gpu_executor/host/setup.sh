#!/bin/bash
# skydeck's GPU host set-up: what a fleet instance runs once at boot (the fleet's user data calls it),
# and what an operator or a rehearsal can run on its own.
#
#   check     the AMI's interpreter: Python >= 3.10, torch importable (torchvision noted, for LPIPS), a GPU
#             (torch.cuda.is_available() and nvcc); stops here, before installing anything, if not
#   venv      the executor's environment on that interpreter's packages (a .pth file, not a copy),
#             everything else pinned (requirements-*.txt), never a second torch or torchvision
#   lpips     the LPIPS VGG weights, fetched now so that no job reports LPIPS as unavailable
#   svox2     svox2's CUDA extension at the pinned commit, built against the AMI's torch (GPU only)
#   datasets  s3://BUCKET/data/ to /data with the executor's own boto3 (no AWS CLI needed)
#   service   the systemd unit, started, and seen running
#
# `setup.sh` runs every step, in this order; `setup.sh check venv svox2` runs only those.
#
# Each step's outcome goes to $ROOT/opt/skydeck/boot/boot.json, to s3://BUCKET/fleet/hosts/ID/
# (boot.json and the log's tail) and to the instance's tags (skydeck:boot, skydeck:boot-step).
# A failed boot removes what it half-installed and stops the group (MinSize = MaxSize = 0), so a broken
# AMI is not replaced in a loop; `skydeck fleet hosts` says why and `skydeck fleet resume` restarts it.
#
# Settings (the user data exports them; defaults suit a host):
#   SKYDECK_BUCKET SKYDECK_REGION SKYDECK_QUEUE_URL SKYDECK_TABLE SKYDECK_GROUP   the stacks' names
#   SKYDECK_PYTHON       the AMI's PyTorch interpreter (/opt/pytorch/bin/python)
#   SKYDECK_SVOX2_REF    svox2 commit; SKYDECK_SVOX2_SOURCE a local svox2 checkout instead of GitHub
#   SKYDECK_DATASETS     bucket | none
#   SKYDECK_REQUIRE_GPU  1 (a host without a GPU fails its boot) | 0 (it serves with the torch engine)
#   SKYDECK_HOST_ROOT    a sandbox root for every path written ("" on a host)
#   SKYDECK_IMDS         the instance metadata service; SKYDECK_PIP_ARGS extra pip arguments
#   SKYDECK_REHEARSE_CUDA=1, SKYDECK_CUDA_ARCH, SKYDECK_BUILD_JOBS   a GPU-less rehearsal of the svox2 build:
#                        CUDA taken as available (said in the log), the arch to build for, ninja's jobs
#
# nvcc is looked for in $CUDA_HOME, on PATH, in /usr/local/cuda, then in the PyTorch environment's
# nvidia/cu*/bin (recent DLAMIs ship CUDA as NVIDIA's pip wheels); boot.json records which, and its version.
set -uo pipefail

ALL_STEPS=(check venv lpips svox2 datasets service)
for name in "$@"; do
  case " ${ALL_STEPS[*]} " in
    *" $name "*) ;;
    *) echo "unknown step '$name': the steps are ${ALL_STEPS[*]}"; exit 2 ;;
  esac
done

ROOT="${SKYDECK_HOST_ROOT:-}"
PY="${SKYDECK_PYTHON:-/opt/pytorch/bin/python}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APP="$(cd "$HERE/../.." && pwd)"
BASE="$ROOT/opt/skydeck"
VENV="$BASE/venv"
BOOT="$BASE/boot"
DATA="$ROOT/data"
UNIT="$ROOT/etc/systemd/system/skydeck-executor.service"
TORCH_HOME_DIR="$BASE/torch-home"
SVOX2_DIR="$DATA/svox2"
BUCKET="${SKYDECK_BUCKET:-}"
REGION="${SKYDECK_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
IMDS="${SKYDECK_IMDS:-http://169.254.169.254}"
REQUIRE_GPU="${SKYDECK_REQUIRE_GPU:-1}"
LPIPS_VERSION=0.1.4  # as svox2's render_imgs.py imports it
RECORD="python3 $HERE/boot_record.py $BOOT/boot.json"

mkdir -p "$BOOT"
exec > >(tee -a "$BOOT/boot.log") 2>&1

metadata() {
  local token
  token=$(curl -sf -m 5 -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || return 1
  curl -sf -m 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/$1"
}

INSTANCE="$(metadata instance-id || echo "unknown-$(hostname)")"
$RECORD start --instance "$INSTANCE" --ami "$(metadata ami-id || echo unknown)" \
  --instance-type "$(metadata instance-type || echo unknown)" --python "$PY"

# Reports go to the bucket and the tags with the AWS CLI: it is on the AMI, and it is the one tool that
# works before the executor's environment exists (a failed check has nothing else to report with).
publish() {
  [ -n "$BUCKET" ] || return 0
  local state step
  state=$($RECORD get state)
  step=$($RECORD get step)
  tail -c 65536 "$BOOT/boot.log" > "$BOOT/boot.log.tail"
  aws s3 cp "$BOOT/boot.json" "s3://$BUCKET/fleet/hosts/$INSTANCE/boot.json" --region "$REGION" --only-show-errors \
    --content-type application/json || echo "could not upload boot.json"
  aws s3 cp "$BOOT/boot.log.tail" "s3://$BUCKET/fleet/hosts/$INSTANCE/boot.log" --region "$REGION" --only-show-errors \
    --content-type text/plain || echo "could not upload boot.log"
  aws ec2 create-tags --region "$REGION" --resources "$INSTANCE" \
    --tags "Key=skydeck:boot,Value=$state" "Key=skydeck:boot-step,Value=${step:-none}" || echo "could not tag $INSTANCE"
}

fail() {  # fail STEP REASON: undo what is half-installed, report, stop the group
  local step="$1" reason="$2"
  echo "boot failed at $step: $reason"
  "${SYSTEMCTL:-systemctl}" disable --now skydeck-executor.service >/dev/null 2>&1 || true
  rm -rf "$VENV" "$UNIT" "$TORCH_HOME_DIR" "$SVOX2_DIR" "$BASE/ami-constraints.txt"
  $RECORD step "$step" failed "$reason"
  $RECORD finish failed --step "$step" --reason "$reason"
  # the record and the tags go out first: desired capacity 0 terminates this very instance, and a report
  # sent after it would race the shutdown
  publish
  if [ -n "${SKYDECK_GROUP:-}" ]; then
    # a replacement would fail the same way: stop the group until the operator runs `skydeck fleet resume`
    if aws autoscaling update-auto-scaling-group --region "$REGION" --auto-scaling-group-name "$SKYDECK_GROUP" \
      --min-size 0 --max-size 0 --desired-capacity 0; then
      $RECORD note group_stopped true
      publish  # best effort: the instance may already be shutting down
    else
      echo "could not stop group $SKYDECK_GROUP"
    fi
  fi
  exit 1
}

run_step() {  # run_step NAME FUNCTION: time it, record it, fail the boot on a non-zero exit
  local name="$1" fn="$2" started detail
  started=$(date +%s)
  echo "== $name"
  $RECORD step "$name" running ""
  publish
  if detail=$($fn 2>"$BOOT/$name.err"); then
    cat "$BOOT/$name.err"
    detail=$(printf '%s\n' "$detail" | tail -n 1)
    echo "$name: ${detail:-ok}"
    $RECORD step "$name" ok "${detail:-}" --seconds $(( $(date +%s) - started ))
  else
    cat "$BOOT/$name.err"
    fail "$name" "$(tail -n 3 "$BOOT/$name.err" | tr '\n' ' ' | sed 's/ *$//' | cut -c1-400)"
  fi
}

# shellcheck source=gpu_executor/host/cuda.sh
. "$HERE/cuda.sh"

# -- the steps: each prints a one-line detail on stdout, its log on stderr, and exits non-zero to fail --

step_check() {
  [ -x "$PY" ] || { echo "no interpreter at $PY (the AMI's python_location; set PytorchPython)" >&2; return 1; }
  local version
  version=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') || return 1
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || { echo "$PY is Python $version; skydeck's executor needs Python >= 3.10 (a DLAMI on Amazon Linux 2023)" >&2; return 1; }
  local torch vision
  torch=$("$PY" -c 'import torch; print(torch.__version__)' 2>&1) \
    || { echo "$PY has no importable torch: $(echo "$torch" | tail -n 1)" >&2; return 1; }
  vision=$("$PY" -c 'import torchvision; print(torchvision.__version__)' 2>/dev/null || echo "")
  $RECORD note python "$version"
  $RECORD note torch "$torch"
  $RECORD note torchvision "$vision"
  torch="$torch $vision"
  local cuda nvcc_found=0 nvcc
  cuda=$("$PY" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null || echo False)
  [ "${SKYDECK_REHEARSE_CUDA:-0}" = 1 ] && cuda=True && echo "rehearsal: CUDA taken as available (no GPU here)" >&2
  if nvcc=$(find_nvcc); then
    nvcc_found=1
    $RECORD note nvcc "$nvcc"
    $RECORD note nvcc_version "$("$nvcc" --version 2>/dev/null | grep -o 'release [0-9.]*' | head -n 1)"
  fi
  if [ "$cuda" = "True" ] && [ "$nvcc_found" = 1 ]; then
    $RECORD note gpu "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || echo cuda)"
    $RECORD note engine svox2
    echo "Python $version, torch ${torch%% *}, CUDA available, nvcc found"
    return 0
  fi
  local why="torch.cuda.is_available() is $cuda"
  [ "$nvcc_found" = 1 ] || why="$why, no nvcc"
  nvidia-smi >&2 || true
  if [ "$REQUIRE_GPU" = 1 ]; then
    echo "no GPU: $why (a GPU instance type and a GPU AMI are needed)" >&2
    return 1
  fi
  $RECORD note gpu none
  $RECORD note engine torch
  echo "Python $version, torch ${torch%% *}; no GPU ($why): svox2 not built, torch engine"
}

step_venv() {
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || return 1
  # the AMI's packages (its CUDA torch) seen through a .pth file: works whether the AMI's python is a
  # venv (as /opt/pytorch is) or a system interpreter, which --system-site-packages does not
  local site
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$PY" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"])' \
    | sort -u > "$site/skydeck-ami-packages.pth"
  # pip sees the AMI's torch, torchvision and numpy as installed, and the constraints hold them there
  "$PY" -c 'import torch, numpy; print(f"torch=={torch.__version__}\nnumpy=={numpy.__version__}")' \
    > "$BASE/ami-constraints.txt" || return 1
  local vision
  vision=$($RECORD get torchvision)
  [ -z "$vision" ] || echo "torchvision==$vision" >> "$BASE/ami-constraints.txt"
  local reqs=(-r "$HERE/requirements-executor.txt")
  [ "$($RECORD get engine)" = svox2 ] && reqs+=(-r "$HERE/requirements-svox2.txt")
  # shellcheck disable=SC2086
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check ${SKYDECK_PIP_ARGS:-} \
    -c "$BASE/ami-constraints.txt" "${reqs[@]}" >&2; then
    # pip's lines above name the package whose requirement clashes (scipy 1.15.3 needs numpy < 2.5, say)
    echo "the pins (requirements-*.txt) cannot hold over this AMI's $(tr '\n' ' ' < "$BASE/ami-constraints.txt")on Python $($RECORD get python): see pip's conflict above" >&2
    return 1
  fi
  local own
  own=$("$VENV/bin/python" -m pip list --disable-pip-version-check --format=freeze --path "$site" \
    | grep -iE '^(torch|torchvision|numpy|nvidia-[a-z0-9-]+)==' || true)
  [ -z "$own" ] || { echo "a second copy of the AMI's packages was installed: $own" >&2; return 1; }
  "$VENV/bin/python" -c 'import torch, sys; sys.exit(0 if sys.argv[1] in torch.__file__ else 1)' "$($PY -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')" \
    || { echo "the environment's torch is not the AMI's" >&2; return 1; }
  echo "$("$VENV/bin/python" -m pip list --disable-pip-version-check --format=freeze --path "$site" | wc -l) pinned packages over the AMI's torch $($RECORD get torch)"
}

step_lpips() {
  if [ -z "$($RECORD get torchvision)" ]; then
    if [ "$REQUIRE_GPU" = 1 ]; then
      echo "$PY has no torchvision: LPIPS (VGG) cannot be computed; use a DLAMI for PyTorch" >&2
      return 1
    fi
    echo "skipped: no torchvision on $PY, LPIPS unavailable on this host"
    return 0
  fi
  # lpips without its dependencies: they are the AMI's torch and torchvision and the pins above, and
  # a resolver would otherwise be free to fetch another torchvision
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps ${SKYDECK_PIP_ARGS:-} \
    "lpips==$LPIPS_VERSION" >&2 || return 1
  mkdir -p "$TORCH_HOME_DIR"
  TORCH_HOME="$TORCH_HOME_DIR" "$VENV/bin/python" -c '
import lpips
lpips.LPIPS(net="vgg", verbose=False)
print("LPIPS (VGG) weights in place")' || return 1
}

step_svox2() {
  if [ "$($RECORD get engine)" != svox2 ]; then
    echo "skipped: no GPU, svox2 not built (jobs run on the torch engine)"
    return 0
  fi
  local ref="${SKYDECK_SVOX2_REF:?SKYDECK_SVOX2_REF is not set}"
  rm -rf "$SVOX2_DIR"
  mkdir -p "$(dirname "$SVOX2_DIR")"  # the datasets step, which makes /data, comes later
  if [ -n "${SKYDECK_SVOX2_SOURCE:-}" ]; then
    cp -a "$SKYDECK_SVOX2_SOURCE" "$SVOX2_DIR" || return 1
  else
    git clone --quiet https://github.com/sxyu/svox2.git "$SVOX2_DIR" >&2 || return 1
  fi
  git -C "$SVOX2_DIR" checkout --quiet "$ref" >&2 || return 1
  local nvcc home arch
  nvcc=$($RECORD get nvcc)
  [ -n "$nvcc" ] || { echo "no nvcc recorded by the check step" >&2; return 1; }
  home=$(cuda_home "$nvcc") || return 1
  arch=$(cuda_arch) || { echo "could not read the GPU's compute capability" >&2; return 1; }
  echo "building with CUDA_HOME=$home, TORCH_CUDA_ARCH_LIST=$arch, ninja from $VENV/bin" >&2
  # built against the AMI's torch and CUDA: no build isolation, which would fetch another torch; the
  # venv's bin first on PATH so that torch's builder finds ninja (without it, its slow path)
  env CUDA_HOME="$home" PATH="$VENV/bin:$home/bin:$PATH" TORCH_CUDA_ARCH_LIST="$arch" \
    ${SKYDECK_BUILD_JOBS:+MAX_JOBS=$SKYDECK_BUILD_JOBS} "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation "$SVOX2_DIR" >&2 \
    || return 1
  "$VENV/bin/python" -c 'import svox2.csrc' || return 1
  echo "svox2 $ref built against torch $($RECORD get torch) with $nvcc (sm $arch)"
}

step_datasets() {
  if [ "${SKYDECK_DATASETS:-bucket}" != bucket ]; then
    echo "skipped: Datasets=none (jobs use pushed scenes)"
    return 0
  fi
  mkdir -p "$DATA"
  PYTHONPATH="$APP" "$VENV/bin/python" -m gpu_executor.host.datasets --bucket "$BUCKET" --dest "$DATA" --region "$REGION"
}

step_service() {
  mkdir -p "$(dirname "$UNIT")"
  cat > "$UNIT" <<UNIT
[Unit]
Description=skydeck executor (SQS -> Plenoxels training -> S3 + DynamoDB)
After=network-online.target
[Service]
Environment=QUEUE_URL=${SKYDECK_QUEUE_URL:?SKYDECK_QUEUE_URL is not set}
Environment=TABLE=${SKYDECK_TABLE:?SKYDECK_TABLE is not set}
Environment=BUCKET=$BUCKET
Environment=AWS_DEFAULT_REGION=$REGION
Environment=PYTHONPATH=$APP
Environment=SVOX2_HOME=$SVOX2_DIR
Environment=TORCH_HOME=$TORCH_HOME_DIR
Environment=SKYDECK_DATA_ROOT=$DATA
Environment=SKYDECK_SCALE_IN_PROTECTION=1
Environment=SKYDECK_INSTANCE_ID=$INSTANCE
Environment=SKYDECK_WORKDIR=$BASE/work
Environment=SKYDECK_EXECUTOR_EXITS=$BASE/exits
ExecStart=$VENV/bin/python -m gpu_executor --engine auto
ExecStopPost=$VENV/bin/python -m gpu_executor.exits systemd
Restart=always
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec=120
[Install]
WantedBy=multi-user.target
UNIT
  local ctl="${SYSTEMCTL:-systemctl}"
  "$ctl" daemon-reload >&2 || return 1
  "$ctl" enable --now skydeck-executor.service >&2 || return 1
  sleep 3
  "$ctl" is-active --quiet skydeck-executor.service \
    || { echo "skydeck-executor.service is not running: $("$ctl" status skydeck-executor.service 2>&1 | tail -n 5)" >&2; return 1; }
  echo "skydeck-executor.service running: $VENV/bin/python -m gpu_executor"
}

if [ $# -eq 0 ]; then
  for name in "${ALL_STEPS[@]}"; do run_step "$name" "step_$name"; done
  $RECORD finish ok
  echo "boot ok: $INSTANCE serves $SKYDECK_QUEUE_URL"
  publish
  exit 0
fi
# some steps only (a rehearsal, or an operator redoing one): in the order given, each after the steps it
# reads from boot.json (venv and svox2 read what check found); the boot is not declared finished
for name in "$@"; do run_step "$name" "step_$name"; done
echo "steps ok: $*"
