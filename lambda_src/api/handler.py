"""The jobs API Lambda (API Gateway proxy integration).

    POST /           submit a job (skydeck's document or the seed's command + config body)
    GET  /           list jobs, newest first: ?state=QUEUED&limit=50&next_token=...
    GET  /{job_id}   one job
    DELETE /{job_id} cancel a job

Every refusal is a 4xx with {"error", "field", "message"} and nothing written.
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from typing import Any

import boto3

from lambda_src.jobs.job_table import JobNotFound, JobStore, StateConflict
from lambda_src.jobs.schema import JobValidationError, parse_body

log = logging.getLogger("skydeck.api")
log.setLevel(logging.INFO)


@lru_cache(maxsize=1)
def _store() -> JobStore:
    session = boto3.session.Session()
    return JobStore(
        ddb=session.client("dynamodb"),
        sqs=session.client("sqs"),
        table=os.environ["TABLE"],
        queue_url=os.environ["QUEUE_URL"],
    )


def _response(code: int, body: Any) -> dict[str, Any]:
    return {
        "isBase64Encoded": False,
        "statusCode": code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, default=str),
    }


def _error(code: int, field: str, message: str) -> dict[str, Any]:
    return _response(code, {"error": "invalid request" if code == 400 else "error", "field": field, "message": message})


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    method = (event.get("httpMethod") or "GET").upper()
    job_id = (event.get("pathParameters") or {}).get("job_id")
    try:
        if method == "POST" and not job_id:
            return _submit(event)
        if method == "GET" and not job_id:
            return _list(event.get("queryStringParameters") or {})
        if method == "GET":
            return _response(200, _store().get(job_id))
        if method == "DELETE" and job_id:
            return _response(200, _store().cancel(job_id))
        return _error(405, "method", f"{method} is not supported on this path")
    except JobValidationError as exc:
        return _response(400, exc.to_dict())
    except JobNotFound as exc:
        return _error(404, "job_id", str(exc))
    except StateConflict as exc:
        return _error(409, "state", str(exc))


def _submit(event: dict[str, Any]) -> dict[str, Any]:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        body = base64.b64decode(body)
    spec = parse_body(body)
    record = _store().submit(spec)
    log.info(json.dumps({"event": "job_submitted", "job_id": record["job_id"], "name": spec.name}))
    # The seed's clients read command/config back from the answer; keep them alongside the id.
    answer = {"job_id": record["job_id"], "state": record["state"], "job": spec.to_dict()}
    raw = json.loads(body)
    if isinstance(raw, dict) and "command" in raw:
        answer.update(command=raw["command"], config=raw.get("config", {}))
    return _response(201, answer)


def _list(query: dict[str, str]) -> dict[str, Any]:
    state = query.get("state")
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        return _error(400, "limit", "must be an integer between 1 and 1000")
    if not 1 <= limit <= 1000:
        return _error(400, "limit", "must be an integer between 1 and 1000")
    try:
        return _response(
            200, _store().list(state=state.upper() if state else None, limit=limit, next_token=query.get("next_token"))
        )
    except ValueError as exc:
        field = "state" if "state" in str(exc) else "next_token"
        return _error(400, field, str(exc))
