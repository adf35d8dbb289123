"""What the stack templates promise about security, checked resource by resource (docs/security.md)."""

from __future__ import annotations

from typing import Any

import pytest

from backend.core.paths import stacks_dir
from backend.stacks.service import _load_template

TEMPLATES = sorted(stacks_dir().glob("*.yaml"))


def _resources(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in TEMPLATES:
        for name, body in (_load_template(path.read_text()).get("Resources") or {}).items():
            if body.get("Type") == kind:
                found.append((path.stem, name, body.get("Properties") or {}))
    return found


def _statements() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for kind in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for stack, name, props in _resources(kind):
            docs = [p.get("PolicyDocument") for p in props.get("Policies", [])] + [props.get("PolicyDocument")]
            for doc in filter(None, docs):
                for statement in doc.get("Statement", []):
                    found.append((stack, name, statement))
    return found


@pytest.mark.parametrize("stack,name,props", _resources("AWS::S3::Bucket"), ids=lambda v: str(v)[:40])
def test_every_bucket_is_encrypted_and_private(stack: str, name: str, props: dict[str, Any]) -> None:
    assert props.get("BucketEncryption"), f"{stack}.{name} is not encrypted"
    block = props.get("PublicAccessBlockConfiguration") or {}
    keys = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    assert all(block.get(k) in (True, "true") for k in keys), f"{stack}.{name} may become public"


def test_every_queue_and_table_is_encrypted_at_rest() -> None:
    queues = _resources("AWS::SQS::Queue")
    tables = _resources("AWS::DynamoDB::Table")
    assert queues and tables
    for stack, name, props in queues:
        assert props.get("SqsManagedSseEnabled") in (True, "true") or props.get("KmsMasterKeyId"), f"{stack}.{name}"
    for stack, name, props in tables:
        assert (props.get("SSESpecification") or {}).get("SSEEnabled") in (True, "true"), f"{stack}.{name}"


def test_no_policy_grants_every_action_and_no_ingress_is_open_to_the_world() -> None:
    statements = _statements()
    assert statements
    for stack, name, statement in statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        assert not [a for a in actions if a == "*" or a.endswith(":*")], f"{stack}.{name} grants {actions}"
    for kind in ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress"):
        for stack, name, props in _resources(kind):
            rules = _branches(props.get("SecurityGroupIngress", [])) if kind.endswith("Group") else [props]
            assert not [r for r in rules if r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0"], (
                f"{stack}.{name} is open to the world"
            )


def _branches(value: Any) -> list[dict[str, Any]]:
    """Rules written plainly or under Fn::If (both branches count)."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [r for branch in value["Fn::If"][1:] for r in _branches(branch)]
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def test_every_api_method_demands_signed_requests() -> None:
    methods = _resources("AWS::ApiGateway::Method")
    assert methods
    assert all(props.get("AuthorizationType") == "AWS_IAM" for _, _, props in methods)


def _all_resources() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in TEMPLATES:
        for name, body in (_load_template(path.read_text()).get("Resources") or {}).items():
            found.append((path.stem, name, body))
    return found


def test_every_skipped_checkov_check_says_why() -> None:
    # a skip without a reason hides a finding; CI runs checkov and fails on anything not passed or skipped
    skipped = 0
    for stack, name, body in _all_resources():
        for skip in ((body.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            skipped += 1
            assert str(skip.get("id", "")).startswith("CKV_"), f"{stack}.{name}: {skip}"
            assert len(str(skip.get("comment", "")).strip()) > 40, f"{stack}.{name} skips {skip['id']} without a reason"
    assert skipped


def test_every_bucket_logs_its_access_to_the_stacks_log_bucket() -> None:
    for stack, name, props in _resources("AWS::S3::Bucket"):
        if name == "AccessLogBucket":
            rules = props["LifecycleConfiguration"]["Rules"]
            assert any(r.get("ExpirationInDays") for r in rules), f"{stack}: access logs never expire"
            continue
        target = (props.get("LoggingConfiguration") or {}).get("DestinationBucketName")
        assert target in ("AccessLogBucket", {"Ref": "AccessLogBucket"}), f"{stack}.{name} does not log its access"


def test_datasets_and_results_keep_replaced_versions_and_the_jobs_table_recovers_to_a_point_in_time() -> None:
    versioned = {
        (s, n)
        for s, n, p in _resources("AWS::S3::Bucket")
        if (p.get("VersioningConfiguration") or {}).get("Status") == "Enabled"
    }
    for wanted in ("DataBucket", "WeightsBucket", "InferenceBucket", "ConnectivityBucket", "MetricsBucket"):
        assert any(n == wanted for _, n in versioned), f"{wanted} is not versioned"
    (jobs,) = [p for _, n, p in _resources("AWS::DynamoDB::Table") if n == "JobsTable"]
    assert jobs["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_the_api_stage_is_throttled_and_traced() -> None:
    (deployment,) = [p for _, _, p in _resources("AWS::ApiGateway::Deployment")]
    stage = deployment["StageDescription"]
    assert stage["ThrottlingRateLimit"] in ("ThrottleRate", {"Ref": "ThrottleRate"}) and stage["ThrottlingBurstLimit"]
    assert stage["TracingEnabled"] in ("Tracing", {"Ref": "Tracing"})


# actions that AWS does not scope to a resource: their statements name the account's ARN space
UNSCOPED_ACTIONS = {"sqs:ListQueues", "autoscaling:DescribeAutoScalingInstances"}


def test_every_wildcard_in_a_policy_stays_inside_the_stacks_own_resources() -> None:
    """A `*` in a granted resource is a stack resource's objects or subscriptions (`${Bucket.Arn}/*`),
    or a name led by the stack's own (`${AWS::StackName}-blocks-*`: SDS-Inf's shard topics and
    buckets, whose count is a parameter), or resources a condition narrows to the stack's own tag (a
    fleet host tags only the instances of its stack's group) - never another stack's or the account's."""
    import re

    # a resource of the stack, or a bucket the stack is given by name (its CodeBucket parameter)
    own = re.compile(r"^\$\{[A-Za-z0-9]+(\.Arn)?\}[/:]|:s3:::\$\{[A-Za-z0-9]+\}/")
    checked, loose = 0, []
    for stack, name, statement in _statements():
        if statement.get("Effect") != "Allow" or "Principal" in statement:
            continue
        actions = statement.get("Action", [])
        actions = {actions} if isinstance(actions, str) else set(actions)
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            text = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
            if not isinstance(text, str) or "*" not in text:
                continue
            checked += 1
            condition = str(statement.get("Condition", ""))
            tagged = "aws:ResourceTag/" in condition and "${AWS::StackName}" in condition
            if not (own.search(text) or "${AWS::StackName}" in text or tagged or actions <= UNSCOPED_ACTIONS):
                loose.append(f"{stack}.{name}: {sorted(actions)} on {text}")
    assert checked > 10 and not loose, loose
