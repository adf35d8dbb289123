"""Refuses, at deploy time, a policy the local cloud could not evaluate as AWS would.

A stack's template (CreateStack, UpdateStack, CreateChangeSet) and IAM's own policy calls
(PutRolePolicy, CreatePolicy, CreatePolicyVersion) are read before moto sees them. Every identity
policy in them (a role's inline `Policies`, an `AWS::IAM::Policy` or `AWS::IAM::ManagedPolicy`) is
checked element by element; intrinsic functions in values are fine, an unknown element, condition
operator or condition key is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

import yaml

from backend.localcloud.iam.policy import unsupported

_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, ...) read as plain values."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]  # yaml's stub wants a MappingNode; the tag handler gets one
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def _template_policies(template: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    resources = template.get("Resources") or {}
    for logical, resource in resources.items() if isinstance(resources, Mapping) else []:
        if not isinstance(resource, Mapping):
            continue
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::IAM::Role":
            for i, inline in enumerate(props.get("Policies") or []):
                name = inline.get("PolicyName", i + 1) if isinstance(inline, Mapping) else i + 1
                yield f"{logical} policy {name}", inline.get("PolicyDocument") if isinstance(inline, Mapping) else None
        elif resource.get("Type") in _POLICY_TYPES:
            yield f"{logical}", props.get("PolicyDocument")


def template_problems(body: str) -> list[str]:
    """What in a template's identity policies cannot be evaluated locally (empty: all of it can)."""
    try:
        template = yaml.load(body, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return []  # not ours to judge: CloudFormation answers a template it cannot read
    if not isinstance(template, Mapping):
        return []
    problems = []
    for where, document in _template_policies(template):
        if isinstance(document, Mapping) and any(str(k).startswith("Fn::") for k in document):
            continue  # a document built by an intrinsic is checked when IAM receives it
        problems += [f"{where}: {p}" for p in unsupported(document if isinstance(document, Mapping) else {})]
    return problems


def request_problems(service: str, body: bytes, content_type: str) -> list[str]:
    """Problems in the policies a CloudFormation or IAM request carries."""
    if "x-www-form-urlencoded" not in content_type:
        return []
    form = parse_qs(body.decode("utf-8", "replace"))
    action = (form.get("Action") or [""])[0]
    if service == "cloudformation" and action in ("CreateStack", "UpdateStack", "CreateChangeSet"):
        template = (form.get("TemplateBody") or [""])[0]
        return template_problems(template) if template else []
    if service == "iam" and action in ("PutRolePolicy", "CreatePolicy", "CreatePolicyVersion", "PutUserPolicy"):
        try:
            document = json.loads((form.get("PolicyDocument") or ["{}"])[0])
        except ValueError:
            return []
        return unsupported(document)
    return []
