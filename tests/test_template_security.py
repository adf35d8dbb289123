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
            rules = props.get("SecurityGroupIngress", []) if kind.endswith("Group") else [props]
            assert not [r for r in rules if r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0"], (
                f"{stack}.{name} is open to the world"
            )


def test_every_api_method_demands_signed_requests() -> None:
    methods = _resources("AWS::ApiGateway::Method")
    assert methods
    assert all(props.get("AuthorizationType") == "AWS_IAM" for _, _, props in methods)
