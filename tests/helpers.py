"""Small helpers for talking to the local cloud the way a user's scripts do."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from backend.context import Context
from backend.jobs.api_endpoint import api_endpoint


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, answer, _ = http_full(method, url, body, headers)
    return status, answer


def http_full(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON answer, response headers)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
            answer_headers = dict(resp.headers.items())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
        answer_headers = dict(exc.headers.items())
    try:
        return status, json.loads(raw) if raw else None, answer_headers
    except ValueError:
        return status, raw.decode(), answer_headers


def api(ctx: Context) -> tuple[str, dict[str, str]]:
    info = api_endpoint(ctx)
    return info["url"], info["headers"]


def written(ctx: Context) -> tuple[int, int]:
    """(items in the jobs table, messages in the jobs queue): what a refused request must not change."""
    out = ctx.stacks.outputs("infra")
    ddb = ctx.clients.client("dynamodb")
    items = ddb.scan(TableName=out["TableName"], Select="COUNT")["Count"]
    attrs = ctx.clients.client("sqs").get_queue_attributes(
        QueueUrl=out["QueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return items, int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
