"""Every role in stacks/ is enforced on the local cloud as AWS enforces it.

Each role is assumed through the local cloud's STS (as the operator may) and makes one call its
policies allow, which succeeds, and one they do not, which is refused with AccessDenied naming the
role. The Lambda runtime's sandbox and limits, and the local metadata service, are checked here too.
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from backend.context import Context
from backend.core.aws import local_credentials, local_endpoint
from backend.core.paths import Home
from backend.localcloud import control


@pytest.fixture(scope="module")
def full_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    home = Home(tmp_path_factory.mktemp("roles") / "home")
    control.up(home, workers=0)
    ctx = Context.create("local", home)
    for short in ("infra", "api", "fleet", "sdsinf"):
        ctx.stacks.deploy(short)
    yield ctx
    control.down(home)


def _admin(ctx: Context) -> boto3.session.Session:
    creds = local_credentials(ctx.home)
    return boto3.session.Session(
        aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key, region_name="us-east-1"
    )


def _resource(ctx: Context, short: str, logical: str) -> str:
    """A role's name: CloudFormation names it STACK-LOGICALID-SUFFIX."""
    prefix = f"{ctx.profile.stack_name(short)}-{logical}-"
    roles = _admin(ctx).client("iam", endpoint_url=local_endpoint(ctx.home)).list_roles()["Roles"]
    [name] = [r["RoleName"] for r in roles if r["RoleName"].startswith(prefix)]
    return str(name)


def _as_role(ctx: Context, short: str, logical: str) -> tuple[Callable[[str], Any], str]:
    """Clients signed with a fresh session of one of a stack's roles, and the role's name."""
    role_name = _resource(ctx, short, logical)
    admin = _admin(ctx)
    endpoint = local_endpoint(ctx.home)
    role_arn = admin.client("iam", endpoint_url=endpoint).get_role(RoleName=role_name)["Role"]["Arn"]
    sts = admin.client("sts", endpoint_url=endpoint)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="test")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )
    return (lambda service: session.client(service, endpoint_url=endpoint)), role_name


def _denied(call: Callable[[], Any], role_name: str, action: str) -> None:
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response["Error"]
    assert error["Code"] in ("AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation")
    assert role_name in error["Message"] and action in error["Message"]


def test_the_fleet_role_reads_what_the_executor_reads_and_may_not_delete_data(full_cloud: Context) -> None:
    ctx = full_cloud
    client, role = _as_role(ctx, "fleet", "InstanceRole")
    bucket = ctx.stacks.outputs("infra")["Bucket"]
    admin_s3 = _admin(ctx).client("s3", endpoint_url=local_endpoint(ctx.home))
    admin_s3.put_object(Bucket=bucket, Key="results/earlier/ckpt.npz", Body=b"npz")
    admin_s3.put_object(Bucket=bucket, Key="results/earlier/job.log", Body=b"first attempt\n")
    admin_s3.put_object(Bucket=bucket, Key="data/scene/x", Body=b"x")
    s3 = client("s3")
    # a validation-only job fetches an earlier job's checkpoint; a re-run its own earlier log
    from gpu_executor.storage import S3Storage

    storage = S3Storage(s3, bucket, Path(ctx.home.cache_dir) / "roles-test")
    assert storage.fetch_checkpoint("earlier").read_bytes() == b"npz"
    assert storage.read("earlier", "job.log") == b"first attempt\n"
    _denied(lambda: s3.delete_object(Bucket=bucket, Key="data/scene/x"), role, "s3:DeleteObject")
    _denied(lambda: s3.get_object(Bucket=bucket, Key="results/earlier/other.bin"), role, "s3:GetObject")


def test_the_jobs_api_role_submits_but_never_takes_jobs(full_cloud: Context) -> None:
    ctx = full_cloud
    client, role = _as_role(ctx, "api", "FunctionRole")
    out = ctx.stacks.outputs("infra")
    client("dynamodb").get_item(TableName=out["TableName"], Key={"job_id": {"S": "none"}})
    _denied(lambda: client("sqs").receive_message(QueueUrl=out["QueueUrl"]), role, "sqs:ReceiveMessage")


@pytest.mark.parametrize("logical", ["ObjectCoordinatorRole", "SerialRole"])
def test_writers_of_run_files_write_them_but_do_not_read_them(full_cloud: Context, logical: str) -> None:
    ctx = full_cloud
    client, role = _as_role(ctx, "sdsinf", logical)
    metrics = ctx.stacks.outputs("sdsinf")["MetricsBucket"]
    client("s3").put_object(Bucket=metrics, Key="runs/test/request.json", Body=b"{}")
    _denied(lambda: client("s3").get_object(Bucket=metrics, Key="runs/test/request.json"), role, "s3:GetObject")


def test_the_object_worker_writes_run_files_but_not_the_model(full_cloud: Context) -> None:
    ctx = full_cloud
    client, role = _as_role(ctx, "sdsinf", "ObjectWorkerRole")
    out = ctx.stacks.outputs("sdsinf")
    client("s3").put_object(Bucket=out["MetricsBucket"], Key="runs/test/w.json", Body=b"{}")
    _denied(lambda: client("s3").put_object(Bucket=out["InferenceBucket"], Key="x", Body=b""), role, "s3:PutObject")


def test_the_queue_worker_marks_empty_targets_but_cannot_overwrite_them(full_cloud: Context) -> None:
    ctx = full_cloud
    client, role = _as_role(ctx, "sdsinf", "QueueWorkerRole")
    table = ctx.stacks.outputs("sdsinf")["EmptyTargetsTable"]
    key = _admin(ctx).client("dynamodb", endpoint_url=local_endpoint(ctx.home)).describe_table(TableName=table)
    name = key["Table"]["KeySchema"][0]["AttributeName"]
    client("dynamodb").get_item(TableName=table, Key={name: {"S": "none"}})
    item = {name: {"S": "none"}}
    _denied(lambda: client("dynamodb").put_item(TableName=table, Item=item), role, "dynamodb:PutItem")


def test_the_queue_coordinator_makes_run_queues_but_does_not_delete_them(full_cloud: Context) -> None:
    ctx = full_cloud
    client, role = _as_role(ctx, "sdsinf", "QueueCoordinatorRole")
    prefix = ctx.stacks.outputs("sdsinf")["QueuePrefix"]
    url = client("sqs").create_queue(QueueName=f"{prefix}-roles-test")["QueueUrl"]
    _denied(lambda: client("sqs").delete_queue(QueueUrl=url), role, "sqs:DeleteQueue")


def test_the_server_takes_requests_but_does_not_send_them(full_cloud: Context) -> None:
    ctx = full_cloud
    client, role = _as_role(ctx, "sdsinf", "ServerRole")
    listed = _admin(ctx).client("sqs", endpoint_url=local_endpoint(ctx.home)).list_queues()["QueueUrls"]
    [url] = [u for u in listed if u.endswith("-server-requests")]
    client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=0)
    _denied(lambda: client("sqs").send_message(QueueUrl=url, MessageBody="{}"), role, "sqs:SendMessage")


def test_a_role_session_says_who_it_is_and_an_unknown_session_is_refused(full_cloud: Context) -> None:
    client, role = _as_role(full_cloud, "fleet", "InstanceRole")
    assert f"assumed-role/{role}/test" in client("sts").get_caller_identity()["Arn"]
    forged = boto3.session.Session(
        aws_access_key_id="ASIAFORGED0000000000", aws_secret_access_key="x", aws_session_token="y",
        region_name="us-east-1",
    ).client("s3", endpoint_url=local_endpoint(full_cloud.home))  # fmt: skip
    with pytest.raises(ClientError) as refused:
        forged.list_buckets()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


# -- Lambda as Lambda runs it ---------------------------------------------------------------------------


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("probe.py", source)
    return buffer.getvalue()


def _function(ctx: Context, name: str, source: str, memory_mb: int = 128) -> Any:
    lam = _admin(ctx).client("lambda", endpoint_url=local_endpoint(ctx.home))
    role = (
        _admin(ctx)
        .client("iam", endpoint_url=local_endpoint(ctx.home))
        .get_role(RoleName=_resource(ctx, "sdsinf", "SerialRole"))["Role"]["Arn"]
    )
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="probe.handler",
        Code={"ZipFile": _zip(source)}, MemorySize=memory_mb, Timeout=60,
    )  # fmt: skip
    return lam


def test_a_handler_that_imports_what_its_zip_and_layers_lack_fails_as_on_aws(full_cloud: Context) -> None:
    source = "import yaml\n\ndef handler(event, context):\n    return 'loaded'\n"  # yaml is in skydeck's venv
    lam = _function(full_cloud, "roles-test-import", source)
    answer = lam.invoke(FunctionName="roles-test-import", Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError" and "yaml" in payload["errorMessage"]


def test_a_handler_sees_the_runtimes_boto3_and_runs_as_its_role(full_cloud: Context) -> None:
    source = (
        "import boto3\n\ndef handler(event, context):\n    return boto3.client('sts').get_caller_identity()['Arn']\n"
    )
    lam = _function(full_cloud, "roles-test-identity", source)
    arn = json.loads(lam.invoke(FunctionName="roles-test-identity", Payload=b"{}")["Payload"].read())
    assert ":assumed-role/" in arn and "SerialRole" in arn


def test_a_handler_past_its_memory_size_is_killed_and_reported_as_lambda_reports_it(full_cloud: Context) -> None:
    source = "def handler(event, context):\n    hog = bytearray(400 * 1024 * 1024)\n    return len(hog)\n"
    lam = _function(full_cloud, "roles-test-memory", source, memory_mb=128)
    answer = lam.invoke(FunctionName="roles-test-memory", Payload=b"{}")
    payload = json.loads(answer["Payload"].read())
    assert answer.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "Runtime.OutOfMemory"
    assert "Runtime exited with error: signal: killed" in payload["errorMessage"]


def test_an_asynchronous_invoke_over_1_mb_is_refused_as_lambda_refuses_it(full_cloud: Context) -> None:
    lam = _function(full_cloud, "roles-test-async", "def handler(event, context):\n    return 1\n")
    event = json.dumps({"blob": "x" * (1024 * 1024 + 10)}).encode()
    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName="roles-test-async", InvocationType="Event", Payload=event)
    assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


# -- deploy-time checks and the metadata service -----------------------------------------------------


def test_a_policy_the_local_cloud_cannot_evaluate_is_refused_at_deploy(full_cloud: Context) -> None:
    template = {
        "Resources": {
            "Odd": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                    "Policies": [{"PolicyName": "p", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                         "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]}}],
                },
            }
        }
    }  # fmt: skip
    cfn = _admin(full_cloud).client("cloudformation", endpoint_url=local_endpoint(full_cloud.home))
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName="odd-policy", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    message = refused.value.response["Error"]["Message"]
    assert "DateGreaterThan" in message and "Odd" in message


def test_the_metadata_service_needs_a_token_and_hands_out_the_instance_role(full_cloud: Context) -> None:
    ctx = full_cloud
    imds = json.loads(ctx.home.local_state_file.read_text())["imds"]
    group = ctx.stacks.outputs("fleet")["AutoScalingGroup"]
    asg = _admin(ctx).client("autoscaling", endpoint_url=local_endpoint(ctx.home))
    asg.update_auto_scaling_group(AutoScalingGroupName=group, MinSize=1, DesiredCapacity=1)
    instance = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"][0]
    base = f"{imds}/{instance['InstanceId']}/latest"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/meta-data/instance-id", timeout=10)
    assert refused.value.code == 401
    put = urllib.request.Request(
        f"{base}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    token = urllib.request.urlopen(put, timeout=10).read().decode()

    def get(key: str) -> str:
        request = urllib.request.Request(f"{base}/meta-data/{key}", headers={"X-aws-ec2-metadata-token": token})
        return urllib.request.urlopen(request, timeout=10).read().decode()

    assert get("instance-id") == instance["InstanceId"]
    role = get("iam/security-credentials/")
    assert role == _resource(ctx, "fleet", "InstanceRole")
    creds = json.loads(get(f"iam/security-credentials/{role}"))
    assert creds["Code"] == "Success" and creds["AccessKeyId"].startswith("ASIA")


def test_a_role_with_an_attached_managed_policy_is_judged_by_its_default_version(full_cloud: Context) -> None:
    # reading an attached policy used to fail with AttributeError: every call of such a role was a 500
    iam = _admin(full_cloud).client("iam", endpoint_url=local_endpoint(full_cloud.home))
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    arn = iam.create_role(RoleName="attached-probe", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    listing = {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
    allow = {"Version": "2012-10-17", "Statement": [listing]}
    policy = iam.create_policy(PolicyName="attached-probe", PolicyDocument=json.dumps(allow))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="attached-probe", PolicyArn=policy)
    creds = _admin(full_cloud).client("sts", endpoint_url=local_endpoint(full_cloud.home)).assume_role(
        RoleArn=arn, RoleSessionName="test"
    )["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name="us-east-1",
    )  # fmt: skip
    s3 = session.client("s3", endpoint_url=local_endpoint(full_cloud.home))
    assert "Buckets" in s3.list_buckets()
    _denied(lambda: s3.create_bucket(Bucket="attached-probe"), "attached-probe", "s3:CreateBucket")
