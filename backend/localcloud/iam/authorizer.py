"""Decides, for a request signed with a role's temporary credentials, whether that role may make it.

The role's policies are read from moto's IAM (where the stacks' templates put them) and parsed once;
any change to IAM or to a stack makes them be read again. A refusal carries the error AWS answers
with for that service, and a message naming the role, the action and the resource.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.localcloud.iam.policy import Authorization, Policy, evaluate
from backend.localcloud.iam.requests import ApiRequest, authorizations
from backend.localcloud.iam.sessions import RoleSession


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    protocol: str  # "json" | "rest-xml" | "query" | "ec2"


# the error each service answers an identity-policy denial with (status, code)
_DENIAL = {
    "s3": (403, "AccessDenied"),
    "sqs": (403, "AccessDenied"),
    "sns": (403, "AuthorizationError"),
    "dynamodb": (400, "AccessDeniedException"),
    "lambda": (403, "AccessDeniedException"),
    "logs": (400, "AccessDeniedException"),
    "ec2": (403, "UnauthorizedOperation"),
}


def _document(raw: Any) -> Mapping[str, Any]:
    """moto keeps a role's inline policy as the text it was given: JSON, or a Python dict's repr when
    CloudFormation made it."""
    if isinstance(raw, Mapping):
        return raw
    text = str(raw)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = ast.literal_eval(text)
    return parsed if isinstance(parsed, Mapping) else {}


def role_policies(role_arn: str) -> list[Policy]:
    """The policies of a role as moto holds them (inline and attached), parsed."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    account, partition = parts[4], parts[1]
    name = role_arn.rsplit("/", 1)[-1]
    role = iam_backends[account][partition].get_role(name)
    policies = [Policy.parse(f"{role.name}/{pname}", _document(doc)) for pname, doc in role.policies.items()]
    for managed in role.managed_policies.values():
        # an attached policy's statements are those of its default version
        default = next((v for v in managed.versions if v.is_default), None)
        if default is not None:
            policies.append(Policy.parse(managed.name, _document(default.document)))
    return policies


def resource_tags(arn: str) -> dict[str, str]:
    """The tags on an EC2 resource (what aws:ResourceTag/... reads in the templates' conditions)."""
    from moto.ec2.models import ec2_backends

    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "ec2":
        return {}
    resource_id = parts[5].rsplit("/", 1)[-1]
    try:
        return dict(ec2_backends[parts[4]][parts[3]].tags.get(resource_id, {}))
    except KeyError:
        return {}


class Authorizer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, list[Policy]] = {}
        self._generation = 0

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._policies.clear()

    def policies(self, role_arn: str) -> list[Policy]:
        with self._lock:
            cached = self._policies.get(role_arn)
            generation = self._generation
        if cached is not None:
            return cached
        try:
            found = role_policies(role_arn)
        except Exception:  # noqa: BLE001 - the role is gone (its stack deleted): it may do nothing
            found = []
        with self._lock:
            if generation == self._generation:  # read while IAM changed: used once, not kept
                self._policies[role_arn] = found
        return found

    def check(self, session: RoleSession, request: ApiRequest) -> Refusal | None:
        """None when the role may make this request; otherwise how AWS refuses it."""
        policies = self.policies(session.role_arn)
        for needed in authorizations(request, resource_tags):
            decision = evaluate(policies, needed)
            if not decision.allowed:
                return self._refusal(session, request, needed, decision.explicit_deny)
        return None

    @staticmethod
    def _refusal(session: RoleSession, request: ApiRequest, needed: Authorization, explicit: bool) -> Refusal:
        why = (
            "with an explicit deny in an identity-based policy"
            if explicit
            else f"because no identity-based policy allows the {needed.action} action"
        )
        message = (
            f"User: {session.assumed_role_arn} is not authorized to perform: {needed.action} "
            f"on resource: {needed.resource} {why}"
        )
        status, code = _DENIAL.get(request.service, (403, "AccessDenied"))
        if request.headers.get("x-amz-target") or request.service == "lambda":
            protocol = "json"
        elif request.service == "s3":
            protocol = "rest-xml"
        elif request.service == "ec2":
            protocol = "ec2"
        else:
            protocol = "query"
        return Refusal(status, code, message, protocol)
