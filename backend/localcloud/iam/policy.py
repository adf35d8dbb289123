"""IAM policy evaluation as AWS does it for one principal's identity policies.

A request is allowed when some statement allows its action on its resource with every condition
met, and no statement denies it; an explicit deny wins; otherwise it is denied implicitly. Actions
match case-insensitively, resources case-sensitively; `*` and `?` are wildcards in both.

Only the elements and condition operators below are understood. `unsupported()` names anything
else, so that a policy the local cloud cannot judge is refused when it is deployed rather than
allowed (or denied) by guesswork later.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

STATEMENT_ELEMENTS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"})
DOCUMENT_ELEMENTS = frozenset({"Version", "Id", "Statement"})
STRING_OPERATORS = frozenset(
    {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "StringEqualsIgnoreCase",
     "StringNotEqualsIgnoreCase", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"}
)  # fmt: skip
OTHER_OPERATORS = frozenset({"Bool", "Null"})
# condition keys whose value the local cloud knows for the requests it authorizes
SUPPORTED_KEYS = ("aws:ResourceTag/", "aws:RequestTag/", "aws:TagKeys", "s3:prefix", "aws:SecureTransport")

ContextValue = str | Sequence[str] | None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    # fnmatch's [...] classes are not IAM syntax: escape them, keep * and ?
    regex = fnmatch.translate(glob.replace("[", "\x00").replace("]", "\x01"))
    regex = regex.replace("\x00", r"\[").replace("\x01", r"\]")
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _pattern(pattern, ignore_case).match(value) is not None


@dataclass(frozen=True)
class Authorization:
    """One permission a request needs: an action on a resource, with what its conditions may read."""

    action: str  # "s3:GetObject"
    resource: str  # an ARN, or "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool = False
    statement: str = ""  # the Sid (or index) of the statement that decided, for the message


def _operator_test(base: str, wanted: str, actual: str) -> bool:
    if base in ("StringEquals", "ArnEquals"):
        return wanted == actual
    if base == "StringEqualsIgnoreCase":
        return wanted.lower() == actual.lower()
    if base in ("StringLike", "ArnLike"):
        return glob_match(wanted, actual)
    raise AssertionError(base)


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, ContextValue]) -> bool:
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    present = key in context and context[key] is not None
    actual = context.get(key)
    wanted_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(wanted)]
    if op == "Null":
        return (not present) == (wanted_values[0].lower() == "true")
    if not present:
        # a missing key meets only IfExists, negated operators and ForAllValues (vacuously)
        return if_exists or op in _NEGATED or qualifier == "ForAllValues"
    actual_values = [str(v) for v in _as_list(actual)]
    if op == "Bool":
        return any(a.lower() == w.lower() for a in actual_values for w in wanted_values)
    negated = op in _NEGATED
    base = _NEGATED.get(op, op)

    def matches(a: str) -> bool:
        return any(_operator_test(base, w, a) for w in wanted_values)

    if qualifier == "ForAllValues":
        result = all(matches(a) for a in actual_values)
    elif qualifier == "ForAnyValue":
        result = any(matches(a) for a in actual_values)
    else:
        result = any(matches(a) for a in actual_values)
    return not result if negated else result


@dataclass(frozen=True)
class Statement:
    sid: str
    allow: bool
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: tuple[tuple[str, str, Any], ...]

    def applies(self, request: Authorization) -> bool:
        if self.actions and not any(glob_match(a, request.action, ignore_case=True) for a in self.actions):
            return False
        if self.not_actions and any(glob_match(a, request.action, ignore_case=True) for a in self.not_actions):
            return False
        if self.resources and not any(glob_match(r, request.resource) for r in self.resources):
            return False
        if self.not_resources and any(glob_match(r, request.resource) for r in self.not_resources):
            return False
        return all(_condition_holds(op, key, wanted, request.context) for op, key, wanted in self.conditions)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in _as_list(value)) if value is not None else ()


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, name: str, document: Mapping[str, Any]) -> Policy:
        statements = []
        for i, raw in enumerate(_as_list(document.get("Statement", []))):
            conditions = tuple(
                (op, key, wanted) for op, block in (raw.get("Condition") or {}).items() for key, wanted in block.items()
            )
            statements.append(
                Statement(
                    sid=str(raw.get("Sid") or f"statement {i + 1}"),
                    allow=raw.get("Effect") == "Allow",
                    actions=_strings(raw.get("Action")),
                    not_actions=_strings(raw.get("NotAction")),
                    resources=_strings(raw.get("Resource")),
                    not_resources=_strings(raw.get("NotResource")),
                    conditions=conditions,
                )
            )
        return cls(name, tuple(statements))


def evaluate(policies: Iterable[Policy], request: Authorization) -> Decision:
    allowed_by = ""
    for policy in policies:
        for statement in policy.statements:
            if not statement.applies(request):
                continue
            if not statement.allow:
                return Decision(False, explicit_deny=True, statement=f"{policy.name}/{statement.sid}")
            allowed_by = allowed_by or f"{policy.name}/{statement.sid}"
    return Decision(bool(allowed_by), statement=allowed_by)


def _key_supported(key: str) -> bool:
    return any(key == k or (k.endswith("/") and key.startswith(k)) for k in SUPPORTED_KEYS)


def unsupported(document: Mapping[str, Any]) -> list[str]:
    """What in this policy document the local cloud cannot evaluate as AWS would (empty: all of it)."""
    problems: list[str] = []
    if not isinstance(document, Mapping):
        return ["the policy document is not an object"]
    problems += [f"policy element {k!r}" for k in document if k not in DOCUMENT_ELEMENTS]
    for i, raw in enumerate(_as_list(document.get("Statement", []))):
        where = f"statement {raw.get('Sid') or i + 1}" if isinstance(raw, Mapping) else f"statement {i + 1}"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: not an object")
            continue
        problems += [f"{where}: element {k!r}" for k in raw if k not in STATEMENT_ELEMENTS]
        if raw.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"{where}: Effect must be Allow or Deny")
        condition = raw.get("Condition") or {}
        if not isinstance(condition, Mapping):
            problems.append(f"{where}: Condition is not an object")
            continue
        for operator, block in condition.items():
            qualifier, _, op = str(operator).rpartition(":")
            op = op.removesuffix("IfExists")
            if qualifier not in ("", "ForAllValues", "ForAnyValue") or op not in STRING_OPERATORS | OTHER_OPERATORS:
                problems.append(f"{where}: condition operator {operator!r}")
                continue
            if not isinstance(block, Mapping):
                problems.append(f"{where}: condition {operator!r} is not an object")
                continue
            problems += [f"{where}: condition key {key!r}" for key in block if not _key_supported(str(key))]
    return problems
