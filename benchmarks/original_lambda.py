"""The original SDS-Inf deployed as Lambda functions on a local cloud, as its README deploys it on AWS.

Its README's steps, here:

1. roles: the workers' with the managed policies it lists (S3, SQS, SNS, DynamoDB, CloudWatch full
   access, AWSLambdaBasicExecutionRole) and a policy to invoke the worker function; the
   coordinator's with S3 full access, basic execution and the same invoke policy;
3. `scripts/create_dynamodb_table.py` and `scripts/create_pub_sub_resources.py`, run as the operator;
4-9. the worker and its coordinator as Python functions (the local cloud's python runtime, numpy and
   scipy from a layer), `SPARSE_DNN_WORKER` set to the worker's ARN in both;
10. asynchronous invocation: maximum event age 1 min, no retries;
11. buckets for weights, inputs, connectivity and metrics, the files in them as its readers read them
   (`original_files`);
12. the coordinator invoked with a payload; the metric files read back from the metrics bucket.

Every change made to the original's files is in EDITS below, each with its reason, checked to apply
exactly where expected (a different checkout fails loudly rather than running something else).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORIGINAL_REGION = "eu-west-1"
PREFIX = "sds-inf-original"
WORKER_POLICIES = (
    "AmazonS3FullAccess", "AmazonSQSFullAccess", "AmazonSNSFullAccess", "AmazonDynamoDBFullAccess",
    "CloudWatchFullAccess", "service-role/AWSLambdaBasicExecutionRole",
)  # fmt: skip
COORDINATOR_POLICIES = ("AmazonS3FullAccess", "service-role/AWSLambdaBasicExecutionRole")
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@dataclass(frozen=True)
class Edit:
    """One change to one of the original's files: `old` must occur exactly `count` times (None: every
    occurrence, if any)."""

    path: str
    old: str
    new: str
    count: int | None
    why: str


SOURCES = {"queue": "sds_inf_queue", "object": "sds_inf_object", "serial": "sds_inf_serial"}


def module_paths(variant: str) -> dict[str, str]:
    """The variant's function modules: its worker, and (Queue, Object) its coordinator."""
    folder, source = f"src/sds-inf-{variant}", SOURCES[variant]
    paths = {"worker": f"{folder}/{source}_worker.py"}
    if variant != "serial":
        paths["coordinator"] = f"{folder}/{source}_coordinator.py"
    return paths


def edits(variant: str, region: str, worker_arn: str, workers: int) -> list[Edit]:
    # the Queue files name eu-west-1 in every client; the Object and Serial files take the function's region
    region_old, region_new = f"region_name='{ORIGINAL_REGION}'", f"region_name='{region}'"
    why_region = "the README's region: the local cloud's"
    found: list[Edit] = []
    for path in module_paths(variant).values():
        found.append(Edit(path, region_old, region_new, None, why_region))
        if variant != "serial":
            arn = f'SPARSE_DNN_WORKER = "{worker_arn}"'
            found.append(Edit(path, 'SPARSE_DNN_WORKER = ""', arn, 1, "README step 8: the deployed worker's ARN"))
    if variant == "queue":
        found += [
            Edit("scripts/create_dynamodb_table.py", region_old, region_new, 2, why_region),
            Edit("scripts/create_pub_sub_resources.py", region_old, region_new, None, why_region),
            Edit(
                "scripts/create_pub_sub_resources.py", "QUEUE_NAME_PREFIX = 'SMPI_WQ_DEMO'",
                "QUEUE_NAME_PREFIX = '_SMPI_WQ_DEMO'", 1,
                "the script names queues SMPI_WQ_DEMO{id} and the worker asks for _SMPI_WQ_DEMO{id} "
                "(QUEUE_NAME_PREFIX differs between the two files): the worker's name is kept",
            ),
            Edit(
                "scripts/create_pub_sub_resources.py", "numWorkers = 65", f"numWorkers = {workers}", 1,
                "the script's own worker count (65) set to the run's, as a user edits it",
            ),
        ]  # fmt: skip
    return found


def edited(root: Path, path: str, changes: list[Edit]) -> str:
    text = (root / path).read_text()
    for change in (c for c in changes if c.path == path):
        seen = text.count(change.old)
        if change.count is not None and seen != change.count:
            raise SystemExit(
                f"{path}: expected {change.count} of {change.old!r}, found {seen}: is {root} the pinned checkout?"
            )
        text = text.replace(change.old, change.new)
    return text


@dataclass(frozen=True)
class Deployment:
    variant: str
    coordinator: str  # function name ("" for Serial, invoked directly)
    worker: str
    buckets: dict[str, str]
    changes: list[Edit]


class OriginalCloud:
    """The original's functions and resources on a running local cloud, made through the operator's
    clients (`client(service)`) and environment (`env`, for the original's scripts)."""

    def __init__(self, client: Callable[[str], Any], env: dict[str, str], region: str, account: str) -> None:
        self.client = client
        self.env = env
        self.region = region
        self.account = account

    # -- README step 1 ------------------------------------------------------------------------------
    def role(self, name: str, managed: tuple[str, ...], invoke_arn: str) -> str:
        iam = self.client("iam")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        for policy in managed:
            iam.attach_role_policy(RoleName=name, PolicyArn=self.managed_policy(policy))
        invoke = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": invoke_arn}],
        }
        iam.put_role_policy(RoleName=name, PolicyName="invoke-worker", PolicyDocument=json.dumps(invoke))
        return str(arn)

    def managed_policy(self, path: str) -> str:
        """An AWS managed policy's ARN in this account: the local cloud does not load AWS's own, so each
        is made once from AWS's published document (the copy moto ships), under the same name.

        Its statements with a Condition are left out: in these six policies they allow only what the
        original never calls (sms-voice, iam:PassRole, iam:CreateServiceLinkedRole), and the local
        cloud refuses condition keys it cannot evaluate. Leaving out an Allow only narrows the role."""
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        name = path.rsplit("/", 1)[-1]
        arn = f"arn:aws:iam::{self.account}:policy/{name}"
        iam = self.client("iam")
        try:
            iam.get_policy(PolicyArn=arn)
        except iam.exceptions.NoSuchEntityException:
            document = dict(json.loads(aws_managed_policies_data)[name]["Document"])
            document["Statement"] = [st for st in document["Statement"] if "Condition" not in st]
            iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
        return arn

    # -- README step 3 ------------------------------------------------------------------------------
    def run_script(self, root: Path, path: str, changes: list[Edit]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / Path(path).name
            script.write_text(edited(root, path, changes))
            done = subprocess.run(
                [sys.executable, str(script)], env=self.env, cwd=tmp, capture_output=True, text=True, check=False
            )
        if done.returncode != 0:
            raise SystemExit(f"the original's {path} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    # -- README steps 4-10 --------------------------------------------------------------------------
    def function(self, name: str, module: str, source: str, role_arn: str, layer: str, runtime: str) -> str:
        lam = self.client("lambda")
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{module}.py", source)
        arn = lam.create_function(
            FunctionName=name, Runtime=runtime, Role=role_arn, Handler=f"{module}.lambda_handler",
            Code={"ZipFile": package.getvalue()}, Timeout=900, MemorySize=3008, Layers=[layer],
        )["FunctionArn"]  # fmt: skip
        lam.put_function_event_invoke_config(
            FunctionName=name, MaximumEventAgeInSeconds=60, MaximumRetryAttempts=0
        )  # README step 10
        return str(arn)

    def deploy(self, root: Path, variant: str, workers: int, layer: str, runtime: str) -> Deployment:
        worker = f"{PREFIX}-{variant}-worker"
        worker_arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{worker}"
        changes = edits(variant, self.region, worker_arn, workers)
        paths = module_paths(variant)
        worker_role = self.role(f"{PREFIX}-{variant}-worker-role", WORKER_POLICIES, worker_arn)
        # README step 9 deploys the worker, sets the ARN, then deploys again: its ARN is known up front here
        module = Path(paths["worker"]).stem
        self.function(worker, module, edited(root, paths["worker"], changes), worker_role, layer, runtime)
        coordinator = ""
        if "coordinator" in paths:
            coordinator = f"{PREFIX}-{variant}-coordinator"
            role = self.role(f"{PREFIX}-{variant}-coordinator-role", COORDINATOR_POLICIES, worker_arn)
            source = edited(root, paths["coordinator"], changes)
            self.function(coordinator, Path(paths["coordinator"]).stem, source, role, layer, runtime)
        if variant == "queue":
            self.run_script(root, "scripts/create_dynamodb_table.py", changes)
            self.run_script(root, "scripts/create_pub_sub_resources.py", changes)
        s3 = self.client("s3")
        buckets = {part: f"{PREFIX}-{part}-{self.account}" for part in ("weights", "inference", "connectivity")}
        buckets["metrics"] = f"{PREFIX}-metrics-{self.account}"
        # the Object worker's blocks for worker K go to the hidden bucket's "-{K % 10}" (its S3_BUCKET_MODULO)
        buckets["hidden"] = f"{PREFIX}-hidden-{self.account}"
        shards = [f"{buckets['hidden']}-{i}" for i in range(10)] if variant == "object" else []
        for bucket in [*buckets.values(), *shards]:
            s3.create_bucket(Bucket=bucket)
        return Deployment(variant, coordinator, worker, buckets, changes)

    # -- README steps 11-12 -------------------------------------------------------------------------
    def upload(self, folders: dict[str, Path], buckets: dict[str, str], subfolder: str) -> None:
        s3 = self.client("s3")
        for part, folder in folders.items():
            for path in sorted(folder.iterdir()):
                s3.put_object(Bucket=buckets[part], Key=f"{subfolder}/{path.name}", Body=path.read_bytes())

    def run(self, deployment: Deployment, payload: dict[str, Any], timeout_s: float, log: Path) -> dict[str, bytes]:
        """Invokes the coordinator (the Serial worker itself) and waits for every metric file."""
        target = deployment.coordinator or deployment.worker
        return invoke_and_collect(self.client, target, deployment.variant, payload, timeout_s, log)


def metric_keys(payload: dict[str, Any], variant: str) -> list[str]:
    """The files a run writes at metrics_loc: the master row, and (Queue, Object) a layer file per worker."""
    loc = payload["data_params"]["metrics_loc"]
    keys = [f"{loc['subfolder']}/{loc['filename']}"]
    if variant != "serial":
        workers = int(payload["invoc_params"]["total_nworkers"])
        keys += [f"{loc['subfolder']}/{loc['expt_id']}/W{k}_LS.csv" for k in range(workers)]
    return keys


def invoke_and_collect(
    client: Callable[[str], Any], function: str, variant: str, payload: dict[str, Any], timeout_s: float, log: Path
) -> dict[str, bytes]:
    """Invokes `function` with `payload` asynchronously, as the original's README does, and waits for
    every file a `variant` run writes at the payload's metrics_loc (metric_keys); their keys -> contents.
    On time out, the log's tail."""
    lam, s3 = client("lambda"), client("s3")
    wanted = metric_keys(payload, variant)
    bucket = payload["data_params"]["metrics_loc"]["bucket"]
    answer = lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode())
    if answer.get("StatusCode") != 202:
        raise SystemExit(f"invoking {function} answered {answer.get('StatusCode')}")
    deadline = time.monotonic() + timeout_s
    got: dict[str, bytes] = {}
    while time.monotonic() < deadline:
        for key in wanted:
            if key not in got:
                with contextlib.suppress(s3.exceptions.NoSuchKey):
                    got[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if len(got) == len(wanted):
            return got
        time.sleep(1.0)
    tail = log.read_text()[-3000:] if log.is_file() else "(no log)"
    raise SystemExit(
        f"{function} did not write {sorted(set(wanted) - set(got))} in {timeout_s:.0f} s; its log ends:\n{tail}"
    )


def categories_from_log(text: str) -> tuple[list[int], bool]:
    """The inputs the original's run found alive, 1-based, as its workers print them: each prints its
    column maxima (`print(H.max(axis=0))`, a (1, batch) COO of `(0, INPUT)\\tVALUE` lines) before the
    final synchronisation; and whether every printed maximum was read (the printed counts add up).
    The original writes its results nowhere else: worker 0's master COO puts worker ids in its columns."""
    text = text.split("OVERALL INFERENCE RESULTS", 1)[0]
    expected = sum(int(m) for m in re.findall(r"max_vals_coo nnz\s*:\s*(\d+)", text))
    entries = re.findall(r"^\s*\(0, (\d+)\)\t(\S+)$", text, flags=re.MULTILINE)
    alive = sorted({int(col) + 1 for col, value in entries if float(value) > 0})
    return alive, len(entries) == expected
