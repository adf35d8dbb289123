"""The local cloud's policy evaluator decides as AWS's does for the elements the templates use."""

from __future__ import annotations

from backend.localcloud.iam.policy import Authorization, Policy, evaluate, unsupported
from backend.localcloud.iam.requests import ApiRequest, authorizations

BUCKET = "arn:aws:s3:::data"


def _policy(*statements: dict[str, object]) -> list[Policy]:
    return [Policy.parse("p", {"Version": "2012-10-17", "Statement": list(statements)})]


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policies = _policy(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:Delete*", "Resource": f"{BUCKET}/data/*"},
    )
    assert evaluate(policies, Authorization("s3:GetObject", f"{BUCKET}/data/x")).allowed
    denied = evaluate(policies, Authorization("s3:DeleteObject", f"{BUCKET}/data/x"))
    assert not denied.allowed and denied.explicit_deny and denied.statement == "p/NoDeletes"


def test_actions_match_without_case_and_resources_with_it() -> None:
    policies = _policy({"Effect": "Allow", "Action": "S3:getobject", "Resource": f"{BUCKET}/results/*/ckpt.npz"})
    assert evaluate(policies, Authorization("s3:GetObject", f"{BUCKET}/results/j1/ckpt.npz")).allowed
    assert not evaluate(policies, Authorization("s3:GetObject", f"{BUCKET}/Results/j1/ckpt.npz")).allowed
    assert not evaluate(policies, Authorization("s3:GetObject", f"{BUCKET}/results/j1/other.npz")).allowed


def test_conditions_on_prefix_and_tag_keys_hold_as_on_aws() -> None:
    listing = _policy(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET,
         "Condition": {"StringLike": {"s3:prefix": ["data/*", "results/*"]}}}
    )  # fmt: skip
    assert evaluate(listing, Authorization("s3:ListBucket", BUCKET, {"s3:prefix": "data/scene/"})).allowed
    assert not evaluate(listing, Authorization("s3:ListBucket", BUCKET, {"s3:prefix": ""})).allowed
    tagging = _policy(
        {"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["skydeck:boot", "skydeck:boot-step"]},
                       "StringEquals": {"aws:ResourceTag/group": "fleet"}}}
    )  # fmt: skip
    ok = {"aws:TagKeys": ["skydeck:boot"], "aws:ResourceTag/group": "fleet"}
    assert evaluate(tagging, Authorization("ec2:CreateTags", "arn:aws:ec2:r:a:instance/i-1", ok)).allowed
    other_key = {**ok, "aws:TagKeys": ["skydeck:boot", "Name"]}
    assert not evaluate(tagging, Authorization("ec2:CreateTags", "arn:aws:ec2:r:a:instance/i-1", other_key)).allowed
    other_group = {**ok, "aws:ResourceTag/group": "elsewhere"}
    assert not evaluate(tagging, Authorization("ec2:CreateTags", "arn:aws:ec2:r:a:instance/i-1", other_group)).allowed


def test_what_cannot_be_evaluated_is_named() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "When", "Effect": "Allow", "Action": "*", "Resource": "*",
             "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}},
            {"Sid": "Who", "Effect": "Allow", "NotPrincipal": "*", "Action": "*", "Resource": "*"},
        ],
    }  # fmt: skip
    problems = unsupported(document)
    assert any("DateLessThan" in p for p in problems) and any("NotPrincipal" in p for p in problems)


def test_a_copy_needs_read_on_its_source_and_write_on_its_target() -> None:
    request = ApiRequest(
        "PUT", "/data/results/j/ckpt.npz", "", {"x-amz-copy-source": "/data/scenes/s/ckpt.npz"}, b"",
        "s3", "us-east-1", "123456789012",
    )  # fmt: skip
    needed = {(a.action, a.resource) for a in authorizations(request, lambda arn: {})}
    assert needed == {("s3:PutObject", f"{BUCKET}/results/j/ckpt.npz"), ("s3:GetObject", f"{BUCKET}/scenes/s/ckpt.npz")}
