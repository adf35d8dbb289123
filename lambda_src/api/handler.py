"""The jobs API Lambda (API Gateway proxy integration).

At the stage root, the original's contract (heeki/plenoxels `src/fn.py`), for its clients:

    POST /                  submit a job -> 200 {"command", "config", "job_id"}
    GET  /                  list jobs -> 200 [ {"job_id", "command", "config", "psnr", "ssim", "lpips", ...} ]
                            every job, as the original's table scan answered (command and config as the
                            JSON text of what was sent, metrics as the text the original's executor
                            kept, " 31.2"); pages only when asked, with ?limit=&next_token=&state=,
                            the next page's token in the X-Next-Token response header

skydeck's own, richer answers (what the CLI and the console use):

    POST   /jobs            submit -> 201 {"job_id", "state", "job", ...}

A submit (at either path) may carry an `Idempotency-Key` header: the same key from the same caller
with the same body answers with the job it made the first time instead of making another, so a
client may retry a submit whose answer it lost. The same key with another body is a 409.

    GET    /jobs            {"items": [...], "next_token"}: ?state=QUEUED&limit=50&next_token=...
    GET    /jobs/{job_id}   one job
    DELETE /jobs/{job_id}   cancel a job

Every refusal is a 4xx with {"error", "field", "message"} and nothing written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lambda_src.jobs.job_table import IdempotencyConflict, JobNotFound, JobStore, StateConflict
from lambda_src.jobs.memory import MAX_HOST_BYTES, too_large
from lambda_src.jobs.record import JobRecord
from lambda_src.jobs.schema import EVAL_COMMAND, LAUNCH_COMMAND, JobValidationError, parse_body

log = logging.getLogger("skydeck.api")
log.setLevel(logging.INFO)
ORIGINAL_METRICS = ("psnr", "ssim", "lpips")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# job ids made from idempotency keys: uuid5 in a namespace of skydeck's own, so a key never names a random id
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c3f0e-5b7a-4d2e-9a43-2f0d8f1b7c11")


@lru_cache(maxsize=1)
def _store() -> JobStore:
    session = boto3.session.Session()
    return JobStore(
        ddb=session.client("dynamodb"),
        sqs=session.client("sqs"),
        table=os.environ["TABLE"],
        queue_url=os.environ["QUEUE_URL"],
    )


def _response(code: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "isBase64Encoded": False,
        "statusCode": code,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, default=str),
    }


def _error(code: int, field: str, message: str) -> dict[str, Any]:
    return _response(code, {"error": "invalid request" if code == 400 else "error", "field": field, "message": message})


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    method = (event.get("httpMethod") or "GET").upper()
    resource = event.get("resource") or "/"
    job_id = (event.get("pathParameters") or {}).get("job_id")
    try:
        if resource == "/" and method == "POST":
            return _submit(event, original=True)
        if resource == "/" and method == "GET":
            return _list(event.get("queryStringParameters") or {}, original=True)
        if resource == "/jobs" and method == "POST":
            return _submit(event, original=False)
        if resource == "/jobs" and method == "GET":
            return _list(event.get("queryStringParameters") or {}, original=False)
        if job_id and method == "GET":
            return _response(200, _store().get(job_id).to_item())
        if job_id and method == "DELETE":
            return _response(200, _store().cancel(job_id).to_item())
        return _error(405, "method", f"{method} is not supported on {resource}")
    except JobValidationError as exc:
        return _response(400, exc.to_dict())
    except JobNotFound as exc:
        return _error(404, "job_id", str(exc))
    except StateConflict as exc:
        return _error(409, "state", str(exc))
    except IdempotencyConflict as exc:
        return _error(409, "Idempotency-Key", str(exc))
    except ClientError as exc:
        # the store could not take the change (its disk is full, or it is busy): say so, as 503
        error = exc.response.get("Error", {})
        if error.get("Code") not in ("InsufficientStorage", "ServiceUnavailable", "ThrottlingException"):
            raise
        return _response(
            503, {"message": f"the job could not be recorded: {error.get('Message', '')}"}, {"Retry-After": "5"}
        )


def original_command(record: JobRecord) -> list[str]:
    """The command the original would have queued for this job (training or validation)."""
    if record.checkpoint:
        return ["python", EVAL_COMMAND, record.checkpoint, record.scene or ""]
    return [LAUNCH_COMMAND, record.name or "", record.gpu or "0", record.scene or "", "-c"]


def original_item(record: JobRecord) -> dict[str, Any]:
    """A job as the original's GET listed it: command and config as JSON text, metrics as text;
    skydeck's own fields ride along (extra keys never break the original's clients)."""
    sent = record.sent or {}
    skipped = ("command", "config", "sent", *ORIGINAL_METRICS)
    item = {k: v for k, v in record.to_item().items() if k not in skipped}
    # the command and config as the client sent them, as the original stored them (json.dumps of each)
    item["command"] = json.dumps(sent["command"] if "command" in sent else original_command(record))
    item["config"] = json.dumps(sent.get("config", record.config or {}))
    result = record.result.to_dict() if record.result else {}
    for metric in ORIGINAL_METRICS:
        if result.get(metric) is not None:
            # the original's executor kept what followed "PSNR:" in render_imgs.py's `print('PSNR:', x)`:
            # the text of the number with its leading space
            item[metric] = f" {float(result[metric])!r}"
    return item


def _submit(event: dict[str, Any], original: bool) -> dict[str, Any]:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        body = base64.b64decode(body)
    spec = parse_body(body)
    if spec.engine != "svox2" and spec.checkpoint is None:
        # a grid no host of the fleet could hold is refused here, not by an executor after it is queued
        too_big = too_large(spec.config, MAX_HOST_BYTES)
        if too_big:
            raise JobValidationError("config", too_big)
    bucket = os.environ.get("DATA_BUCKET")
    for field, value in (("scene", spec.scene), ("checkpoint", spec.checkpoint or "")):
        if bucket and value.startswith("s3://") and value[5:].split("/", 1)[0] != bucket:
            # the executor reads them with its own credentials: never let a job point them elsewhere
            raise JobValidationError(field, f"an s3:// {field} must be in the data bucket s3://{bucket}/")
    raw = json.loads(body)
    sent_command = isinstance(raw, dict) and "command" in raw
    sent = {"command": raw["command"], "config": raw.get("config", {})} if sent_command else None
    record = _store().submit(spec, job_id=_idempotent_job_id(event), sent=sent)
    log.info(json.dumps({"event": "job_submitted", "job_id": record.job_id, "name": spec.name}))
    command = raw["command"] if sent_command else original_command(record)
    config = raw.get("config", {}) if sent_command else spec.config
    if original:  # the original answered 200 with what it queued and the new id
        return _response(200, {"command": command, "config": config, "job_id": record.job_id})
    answer = {"job_id": record.job_id, "state": record.state, "job": spec.to_dict()}
    if sent_command:
        answer.update(command=command, config=config)
    return _response(201, answer)


def _everything() -> dict[str, Any]:
    """Every job, newest first, as the original's table scan listed them; paged (X-Next-Token) only
    past ROOT_SCAN_MAX, where one answer could no longer hold them."""
    items: list[JobRecord] = []
    token = None
    while len(items) < ROOT_SCAN_MAX:
        page = _store().list(limit=min(1000, ROOT_SCAN_MAX - len(items)), next_token=token)
        items += page.items
        token = page.next_token
        if not token:
            break
    more = {"X-Next-Token": token} if token else {}
    return _response(200, [original_item(r) for r in items], more)


def _idempotent_job_id(event: dict[str, Any]) -> str | None:
    """The job id an Idempotency-Key names, scoped to the caller (two callers' keys never collide)."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    key = headers.get("idempotency-key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise JobValidationError(
            "Idempotency-Key", "must be 1-128 characters of letters, digits and _ . : - (a UUID is a good key)"
        )
    identity = (event.get("requestContext") or {}).get("identity") or {}
    caller = identity.get("userArn") or identity.get("caller") or ""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{caller}\n{key}"))


ROOT_SCAN_MAX = 5000  # the whole table, as the original's scan answered, within Lambda's 6 MB answer


def _list(query: dict[str, str], original: bool) -> dict[str, Any]:
    if original and not {"limit", "next_token", "state"} & set(query):
        return _everything()
    state = query.get("state")
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        return _error(400, "limit", "must be an integer between 1 and 1000")
    if not 1 <= limit <= 1000:
        return _error(400, "limit", "must be an integer between 1 and 1000")
    try:
        page = _store().list(state=state.upper() if state else None, limit=limit, next_token=query.get("next_token"))
    except ValueError as exc:
        field = "state" if "state" in str(exc) else "next_token"
        return _error(400, field, str(exc))
    if not original:
        return _response(200, page.to_dict())
    more = {"X-Next-Token": page.next_token} if page.next_token else {}
    return _response(200, [original_item(r) for r in page.items], more)
