"""Stacks: change-set deploys with live events, no-op updates, clear rollbacks, guarded deletes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from backend.context import Context
from backend.core.errors import ConfigError, NotFoundError
from backend.core.profiles import Profile
from backend.stacks.service import StackEvent, StackFailed, outcome


@pytest.fixture
def fresh(cloud_home) -> Context:  # noqa: ANN001 - a prefix of its own on the session cloud
    import uuid

    return Context(home=cloud_home, profile=Profile(name="st", stack_prefix=f"st{uuid.uuid4().hex[:8]}"))


def test_deploy_streams_resource_events_oldest_first_and_prints_outputs(fresh: Context) -> None:
    events: list[StackEvent] = []
    info = fresh.stacks.deploy("infra", on_event=events.append)
    assert info.status == "CREATE_COMPLETE"
    assert {"Bucket", "QueueUrl", "QueueArn", "TableName", "TableArn", "DeadLetterQueueUrl"} <= set(info.outputs)
    assert info.outputs["TableName"] == f"{fresh.profile.stack_prefix}-infra-jobs"
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)
    keys = [(e.logical_id, e.status) for e in events]
    assert len(keys) == len(set(keys))
    assert ("JobsTable", "CREATE_COMPLETE") in keys and ("JobsQueue", "CREATE_IN_PROGRESS") in keys
    assert keys[-1] == (f"{fresh.profile.stack_prefix}-infra", "CREATE_COMPLETE")
    again = fresh.stacks.deploy("infra", on_event=events.append)  # nothing changed: still a success
    assert outcome(again.status) == "complete"


def test_a_failing_resource_rolls_back_and_is_named(fresh: Context) -> None:
    taken = f"{fresh.profile.stack_prefix}-infra-data-123456789012-us-east-1"
    s3 = fresh.clients.client("s3")
    s3.create_bucket(Bucket=taken)  # someone already owns the bucket name
    events: list[StackEvent] = []
    with pytest.raises(StackFailed) as info:
        fresh.stacks.deploy("infra", on_event=events.append)
    assert "ROLLBACK_COMPLETE" in str(info.value) and "DataBucket" in str(info.value)
    assert any(e.status == "CREATE_FAILED" and e.logical_id == "DataBucket" for e in events)
    with pytest.raises(StackFailed, match="must be deleted first"):
        fresh.stacks.deploy("infra")
    fresh.stacks.delete("infra")
    s3.delete_bucket(Bucket=taken)
    assert fresh.stacks.deploy("infra").status == "CREATE_COMPLETE"


def test_unknown_parameter_is_refused_before_anything_changes(fresh: Context) -> None:
    with pytest.raises(ConfigError, match="Stagee"):
        fresh.stacks.deploy("infra", {"Stagee": "x"})
    assert fresh.stacks.describe("infra").status == "NOT_DEPLOYED"


def test_delete_refuses_while_dependents_exist(fresh: Context) -> None:
    fresh.stacks.deploy("infra")
    fresh.stacks.deploy("api")
    with pytest.raises(StackFailed, match="used by api"):
        fresh.stacks.delete("infra")
    fresh.stacks.delete("api")
    fresh.stacks.delete("infra")
    assert not fresh.stacks.describe("infra").deployed
    with pytest.raises(NotFoundError):
        fresh.stacks.delete("infra")
    with pytest.raises(NotFoundError, match="skydeck's stacks are"):
        fresh.stacks.describe("database")


def test_fleet_stack_deploys_with_its_scaling_group(fresh: Context) -> None:
    fresh.stacks.deploy("infra")
    info = fresh.stacks.deploy("fleet")
    assert info.status == "CREATE_COMPLETE"
    asg = fresh.clients.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[info.outputs["AutoScalingGroup"]]
    )["AutoScalingGroups"][0]
    assert asg["MinSize"] == 0 and asg["MaxSize"] == 4
    sg = fresh.clients.client("ec2").describe_security_groups(GroupIds=[info.outputs["SecurityGroupId"]])
    assert sg["SecurityGroups"][0]["IpPermissions"] == []  # no ingress at all
    # its own VPC goes with it: gateway detached, route table, subnets and security group removed
    fresh.stacks.delete("fleet")
    vpcs = fresh.clients.client("ec2").describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [info.outputs["VpcId"]]}])
    assert not fresh.stacks.describe("fleet").deployed and vpcs["Vpcs"] == []


def test_numpy_layer_is_assembled_from_wheels_deterministically_and_publishes(cloud, tmp_path) -> None:  # noqa: ANN001
    import zipfile

    from backend.stacks.lambda_layers import assemble_layer, publish_layer

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for pkg in ("numpy", "scipy"):
        with zipfile.ZipFile(wheels / f"{pkg}-1.0-cp312-cp312-manylinux2014_x86_64.whl", "w") as zf:
            zf.writestr(f"{pkg}/__init__.py", f"NAME = {pkg!r}\n")
            zf.writestr(f"{pkg}-1.0.dist-info/METADATA", "Name: x\n")
    files, size = assemble_layer(wheels, tmp_path / "a.zip")
    assemble_layer(wheels, tmp_path / "b.zip")
    assert files == 4 and size > 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert "python/numpy/__init__.py" in zf.namelist() and "python/scipy/__init__.py" in zf.namelist()
    bucket = cloud.stacks.outputs("infra")["Bucket"]
    arn = publish_layer(
        cloud.clients.client("lambda"), cloud.clients.client("s3"), bucket, "skydeck-test-numpy", tmp_path / "a.zip"
    )
    assert ":layer:skydeck-test-numpy:" in arn


def test_deploy_shows_the_change_set_can_leave_it_for_review_and_says_no_changes(cloud_home) -> None:  # noqa: ANN001
    import uuid

    from tests.test_cli import run

    home = cloud_home.root
    profiles = cloud_home.profiles_file
    prefix = f"cs{uuid.uuid4().hex[:6]}"
    before = profiles.read_text() if profiles.exists() else ""
    profiles.write_text(f"profiles:\n  review:\n    kind: local\n    stack_prefix: {prefix}\n")
    try:
        planned = run(home, "--profile", "review", "stacks", "deploy", "infra", "--no-execute-changeset", "--json")
        assert planned.returncode == 0, planned.stderr
        doc = json.loads(planned.stdout)
        assert doc["executed"] is False and doc["change_set"]
        assert {"action": "Add", "logical_id": "JobsTable", "resource_type": "AWS::DynamoDB::Table"}.items() <= next(
            c for c in doc["changes"] if c["logical_id"] == "JobsTable"
        ).items()
        shown = run(home, "--profile", "review", "stacks", "deploy", "infra")
        assert shown.returncode == 0, shown.stderr
        assert "Add" in shown.stderr and "JobsTable" in shown.stderr and "CREATE_COMPLETE" in shown.stdout
        again = run(home, "--profile", "review", "stacks", "deploy", "infra")
        assert again.returncode == 0 and "no changes" in again.stdout
    finally:
        run(home, "--profile", "review", "stacks", "delete", "infra", "--yes")
        profiles.write_text(before)


def test_fleet_deploys_into_an_existing_vpc_with_ssh_from_one_network_when_asked(fresh: Context) -> None:
    """The original's deploy options (P_VPC_ID, P_SUBNET_IDS, P_SSH_KEY, P_INGRESS_CIDR): off by default,
    and when given, the group runs in those subnets and SSH is admitted from that CIDR only."""
    ec2 = fresh.clients.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    ec2.create_key_pair(KeyName="ops-key")
    fresh.stacks.deploy("infra")
    info = fresh.stacks.deploy(
        "fleet",
        {"VpcId": vpc, "SubnetIds": ",".join(subnets), "KeyName": "ops-key", "SshIngressCidr": "203.0.113.0/24"},
    )
    assert info.status.endswith("_COMPLETE") and info.outputs["VpcId"] == vpc
    asg = fresh.clients.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[info.outputs["AutoScalingGroup"]]
    )["AutoScalingGroups"][0]
    assert set(asg["VPCZoneIdentifier"].split(",")) == set(subnets)
    (group,) = ec2.describe_security_groups(GroupIds=[info.outputs["SecurityGroupId"]])["SecurityGroups"]
    assert group["VpcId"] == vpc
    (rule,) = group["IpPermissions"]
    assert (rule["FromPort"], rule["ToPort"]) == (22, 22) and rule["IpRanges"][0]["CidrIp"] == "203.0.113.0/24"
    data = ec2.describe_launch_template_versions(LaunchTemplateId=info.outputs["LaunchTemplateId"])
    assert data["LaunchTemplateVersions"][-1]["LaunchTemplateData"]["KeyName"] == "ops-key"


def test_an_update_preview_names_what_the_parameters_really_change(fresh: Context) -> None:
    fresh.stacks.deploy("infra")
    fresh.stacks.deploy("fleet")
    plan = fresh.stacks.plan("fleet", {"MaxSize": "6"})
    assert [(c.action, c.logical_id) for c in plan.changes] == [("Modify", "ExecutorGroup")]
    seen: list = []
    fresh.stacks.execute(plan, on_event=seen.append)
    resources = {e.logical_id for e in seen if e.status.startswith("UPDATE")}
    assert resources <= {"ExecutorGroup", fresh.profile.stack_name("fleet")}, resources
    # an instance type reaches the launch template, and through its version number the group
    plan = fresh.stacks.plan("fleet", {"MaxSize": "6", "InstanceType": "g5.xlarge"})
    assert sorted((c.action, c.logical_id) for c in plan.changes) == [
        ("Modify", "ExecutorGroup"), ("Modify", "LaunchTemplate"),
    ]  # fmt: skip
    fresh.stacks.delete("fleet")


def test_an_explicit_image_id_never_reads_the_ssm_parameter(fresh: Context) -> None:
    """With ImageId given, a parameter path AWS has retired must not fail the stack: it is not read."""
    from backend.localcloud.public_parameters import LOCAL_DLAMI_IMAGE

    fresh.stacks.deploy("infra")
    ec2 = fresh.clients.client("ec2")

    def image(info: Any) -> str:
        versions = ec2.describe_launch_template_versions(LaunchTemplateId=info.outputs["LaunchTemplateId"])
        return str(versions["LaunchTemplateVersions"][-1]["LaunchTemplateData"]["ImageId"])

    gone = "/aws/service/deeplearning/ami/x86_64/retired-amazon-linux-2023/latest/ami-id"
    info = fresh.stacks.deploy("fleet", {"ImageId": "ami-0123456789abcdef0", "ImageParameter": gone})
    assert info.status.endswith("_COMPLETE") and image(info) == "ami-0123456789abcdef0"
    fresh.stacks.delete("fleet")
    info = fresh.stacks.deploy("fleet")  # no ImageId: the DLAMI's public parameter names the image
    assert image(info) == LOCAL_DLAMI_IMAGE
    fresh.stacks.delete("fleet")
    with pytest.raises(StackFailed, match=r"Unable to fetch parameters \[" + re.escape(gone)):
        fresh.stacks.deploy("fleet", {"ImageParameter": gone})
