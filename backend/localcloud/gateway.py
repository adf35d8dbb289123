"""The WSGI layer in front of moto: journals state changes and runs Lambda invocations itself."""

from __future__ import annotations

import html
import io
import json
import logging
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.core.models import DEFAULT_ACCOUNT_ID

from backend.core.disk import full_disk, is_full
from backend.core.local_credentials import LocalCredentials
from backend.localcloud.iam import sts
from backend.localcloud.iam.authorizer import Authorizer, Refusal
from backend.localcloud.iam.deploy_check import request_problems
from backend.localcloud.iam.requests import ApiRequest
from backend.localcloud.iam.sessions import RoleSessions
from backend.localcloud.journal import Journal, credential_scope, is_journaled
from backend.localcloud.lambda_limits import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT
from backend.localcloud.lambda_runtime import FunctionSpec, LambdaRuntime, spec_from_moto
from backend.localcloud.minted_ids import IdMap
from backend.localcloud.sigv4 import identify

_INVOKE_RE = re.compile(r"^/20\d\d-\d\d-\d\d/functions/(?P<name>[^/]+)/invocations/?\Z")
log = logging.getLogger("skydeck.localcloud")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def region_of(headers: dict[str, str], default: str) -> str:
    scope = credential_scope(headers)
    return scope[0] if scope else default


def function_spec(name_or_arn: str, region: str, qualifier: str | None = None) -> FunctionSpec:
    if name_or_arn.startswith("arn:"):
        region = name_or_arn.split(":")[3]
    backend = lambda_backends[DEFAULT_ACCOUNT_ID][region]
    fn = backend.get_function(name_or_arn, qualifier)
    return spec_from_moto(fn, DEFAULT_ACCOUNT_ID, region)


_CACHED_READS = ("DynamoDB_20120810.Query", "DynamoDB_20120810.Scan")


def _answer_worth_keeping(method: str, path: str, query: str, headers: dict[str, str]) -> bool:
    if headers.get("x-amz-target", "").startswith("DynamoDB_"):
        return False
    # whole-object writes and deletes: their answers name nothing later requests use
    is_s3 = (credential_scope(headers) or ("", ""))[1] == "s3"
    object_write = method in ("PUT", "DELETE") and "uploadId" not in query and "uploads" not in query
    return not (is_s3 and object_write)


class ReadCache:
    """Answers to repeated DynamoDB Query/Scan requests, until the next request that may change state.

    moto answers a GSI query by walking every item; under 10,000 jobs that is ~0.5 s a query, and the
    console asks the same few queries every second or two. Any state-changing request (anything
    the journal records, and moto's own API) moves the generation on; an answer computed while the
    generation moved is not kept, so a write racing a read never leaves a stale answer behind."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.generation = 0
        self._answers: OrderedDict[bytes, tuple[str, list[tuple[str, str]], bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._answers.clear()

    def get(self, key: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
        with self._lock:
            hit = self._answers.get(key)
            if hit is not None:
                self._answers.move_to_end(key)
            return hit

    def put(self, key: bytes, generation: int, answer: tuple[str, list[tuple[str, str]], bytes]) -> None:
        with self._lock:
            if generation != self.generation:
                return
            self._answers[key] = answer
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)


_REASONS = {400: "Bad Request", 403: "Forbidden", 503: "Service Unavailable", 507: "Insufficient Storage"}


def _error(protocol: str, status: int, code: str, message: str, start_response: Callable[..., Any]) -> list[bytes]:
    """An error body as each protocol's clients parse it: json, query (SQS, SNS, STS, CloudFormation, IAM,
    Auto Scaling), ec2, or rest-xml (S3)."""
    text = html.escape(message)
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        ctype = "application/x-amz-json-1.0"
    elif protocol == "query":
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{text}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
        ).encode()
        ctype = "text/xml"
    elif protocol == "ec2":
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{text}</Message></Error></Errors><RequestID>local</RequestID></Response>"
        ).encode()
        ctype = "text/xml"
    else:
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{text}</Message></Error>"
        ).encode()
        ctype = "application/xml"
    start_response(f"{status} {_REASONS[status]}", [("Content-Type", ctype), ("x-amzn-ErrorType", code)])
    return [body]


class Gateway:
    """Wraps moto's WSGI app. `recording` is off while the journal is being replayed."""

    def __init__(self, moto_app: WsgiApp, journal: Journal, runtime: LambdaRuntime, region: str) -> None:
        self.moto_app = moto_app
        self.journal = journal
        self.runtime = runtime
        self.region = region
        self.recording = False
        self.reads = ReadCache()
        # Ids minted again by the replay: clients still hold the ones they were first given (an open
        # multipart upload, a change set ARN), so requests reach moto rewritten but are journaled
        # as the client sent them, which the next replay maps the same way.
        self.ids = IdMap()
        self.credentials: LocalCredentials | None = None  # set once replay is done: then requests must be signed
        self.sessions = RoleSessions(None)  # the roles' temporary credentials (the server gives it its file)
        self.authorizer = Authorizer()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if path == "/_skydeck/health":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"ok": true}']
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = environ["CONTENT_TYPE"]
        region, service = credential_scope(headers) or (self.region, "")
        if self.credentials is not None:
            if path.startswith("/moto-api"):
                return self._refuse(
                    headers, 403, "SignatureDoesNotMatch", "moto's own API is closed on this endpoint", start_response
                )
            session, refusal = identify(environ, body, self.credentials, self.sessions)
            if refusal:
                code = "InvalidClientTokenId" if "security token" in refusal else "SignatureDoesNotMatch"
                return self._refuse(headers, 403, code, refusal, start_response)
            request = ApiRequest(
                method, environ.get("RAW_URI") or path, environ.get("QUERY_STRING", ""), headers, body,
                service, region, DEFAULT_ACCOUNT_ID,
            )  # fmt: skip
            if service == "sts":
                sts_answer = sts.answer(request, session, self.sessions)
                if sts_answer is not None:
                    status, payload = sts_answer
                    start_response(status, [("Content-Type", "text/xml")])
                    return [payload]
            if session is not None:
                denied = self.authorizer.check(session, request)
                if denied is not None:
                    return self._deny(denied, start_response)
            if service in ("iam", "cloudformation"):
                problems = request_problems(service, body, headers.get("content-type", ""))
                if problems:
                    message = (
                        "the local cloud cannot evaluate these policy elements as AWS would, so it refuses "
                        "them rather than guess: " + "; ".join(problems[:5])
                    )
                    return self._refuse(headers, 400, "ValidationError", message, start_response)
        match = _INVOKE_RE.match(path) if method == "POST" else None
        if match:
            return self._invoke(match.group("name"), environ, headers, body, start_response)
        target = headers.get("x-amz-target", "")
        if target in _CACHED_READS:
            return self._cached_read(target, headers, body, environ, start_response)
        mutating = path.startswith("/moto-api") or is_journaled(method, path, headers, body)
        if mutating:
            self.reads.invalidate()
        journal_it = self.recording and mutating and not path.startswith("/moto-api")
        captured: dict[str, Any] = {}

        def capture(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = int(status.split()[0])
            return start_response(status, response_headers, exc_info)

        seq = None
        if journal_it:
            # Journaled before it is applied: a change the journal could not keep is not made at all.
            try:
                seq = self.journal.begin(method, path, environ.get("QUERY_STRING", ""), headers, body)
            except sqlite3.Error as exc:
                if is_full(exc):
                    return self._disk_full(headers, start_response)
                return self._unavailable(headers, str(exc), start_response)
        if self.recording and len(self.ids):
            self._rewrite_ids(environ, headers, body)
        try:
            result = self.moto_app(environ, capture)
            answer = b"".join(result) if seq is not None else None
        except Exception:
            if seq is not None:
                self._settle(seq, None)
            raise
        finally:
            if mutating:
                self.reads.invalidate()  # again: a read that ran alongside must not be kept
                if service in ("iam", "cloudformation"):
                    self.authorizer.invalidate()  # a role's policies may have changed
        if seq is None:
            return result
        # the answer is kept with the request when it may carry ids the server minted (replay learns
        # them from it); item and object writes, the hot path, never do
        ok = captured.get("status", 500) < 400
        if not ok:
            self._settle(seq, None)
        elif _answer_worth_keeping(method, path, environ.get("QUERY_STRING", ""), headers):
            self._settle(seq, answer)
        return [answer or b""]

    def _settle(self, seq: int, answer: bytes | None) -> None:
        try:
            self.journal.settle(seq, answer)
        except sqlite3.Error as exc:  # the change stands (it was journaled); only its answer is not kept
            log.warning("journal record %d: answer not kept: %s", seq, exc)

    @classmethod
    def _unavailable(cls, headers: dict[str, str], why: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        message = f"the local cloud could not journal this change ({why}); nothing was changed"
        return cls._refuse(headers, 503, "ServiceUnavailable", message, start_response)

    def _disk_full(self, headers: dict[str, str], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """507, which clients do not retry: the disk stays full until someone frees it."""
        message = f"the local cloud cannot keep this change: {full_disk(self.journal.path)} (nothing was changed)"
        return self._refuse(headers, 507, "InsufficientStorage", message, start_response)

    @staticmethod
    def _refuse(
        headers: dict[str, str], status: int, code: str, message: str, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """An AWS-shaped error in the request's own protocol (JSON, the query protocol's XML, or S3's)."""
        if "json" in headers.get("content-type", "") or headers.get("x-amz-target"):
            protocol = "json"
        elif "x-www-form-urlencoded" in headers.get("content-type", ""):
            protocol = "query"
        else:
            protocol = "rest-xml"
        return _error(protocol, status, code, message, start_response)

    @staticmethod
    def _deny(refusal: Refusal, start_response: Callable[..., Any]) -> Iterable[bytes]:
        """An access denial in the shape the service answers it."""
        message = refusal.message
        if refusal.protocol == "ec2":
            message = f"You are not authorized to perform this operation. {message}"
        return _error(refusal.protocol, refusal.status, refusal.code, message, start_response)

    def _rewrite_ids(self, environ: dict[str, Any], headers: dict[str, str], body: bytes) -> None:
        for key in ("PATH_INFO", "QUERY_STRING", "RAW_URI", "REQUEST_URI", "HTTP_X_AMZ_COPY_SOURCE"):
            if environ.get(key):
                environ[key] = self.ids.rewrite_text(environ[key])
        new_body = self.ids.rewrite_body(body, headers.get("content-type", ""))
        if new_body is not body:
            environ["wsgi.input"] = io.BytesIO(new_body)
            environ["CONTENT_LENGTH"] = str(len(new_body))

    def _cached_read(
        self,
        target: str,
        headers: dict[str, str],
        body: bytes,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        key = f"{region_of(headers, self.region)}|{target}|".encode() + body
        hit = self.reads.get(key)
        if hit is not None:
            status, response_headers, payload = hit
            start_response(status, response_headers)
            return [payload]
        generation = self.reads.generation
        captured: dict[str, Any] = {}

        def capture(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, list(response_headers)
            return start_response(status, response_headers, exc_info)

        payload = b"".join(self.moto_app(environ, capture))
        if captured.get("status", "").startswith("200"):
            self.reads.put(key, generation, (captured["status"], captured["headers"], payload))
        return [payload]

    def _invoke(
        self,
        name: str,
        environ: dict[str, Any],
        headers: dict[str, str],
        body: bytes,
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        from urllib.parse import parse_qs, unquote

        qualifier = parse_qs(environ.get("QUERY_STRING", "")).get("Qualifier", [None])[0]
        try:
            spec = function_spec(unquote(name), region_of(headers, self.region), qualifier)
        except Exception as exc:
            log.debug("function %s not found: %r", unquote(name), exc)
            msg = {"Type": "User", "message": f"Function not found: {unquote(name)}"}
            start_response(
                "404 Not Found",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", "ResourceNotFoundException")],
            )
            return [json.dumps(msg).encode()]
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", "InvalidRequestContentException")],
            )
            return [b'{"Type": "User", "message": "Could not parse request body into json"}']
        kind = headers.get("x-amz-invocation-type", "RequestResponse")
        limit = ASYNC_PAYLOAD_LIMIT if kind == "Event" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            start_response(
                "413 Request Entity Too Large",
                [("Content-Type", "application/json"), ("x-amzn-ErrorType", "RequestEntityTooLargeException")],
            )
            operation = "InvokeAsync" if kind == "Event" else "Invoke"
            message = f"{len(body)} byte payload is too large for the {operation} operation (maximum {limit} bytes)"
            return [json.dumps({"Type": "User", "message": message}).encode()]
        if kind == "Event":
            request_id = self.runtime.invoke_async(spec, event)
            start_response("202 Accepted", [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)])
            return [b""]
        if kind == "DryRun":
            start_response("204 No Content", [])
            return [b""]
        outcome = self.runtime.invoke(spec, event)
        response_headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", "$LATEST")]
        if not outcome.ok:
            response_headers.append(("X-Amz-Function-Error", "Unhandled"))
        start_response("200 OK", response_headers)
        return [json.dumps(outcome.payload).encode()]
