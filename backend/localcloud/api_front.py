"""The local stand-in for API Gateway: same stage path and routes as the deployed REST API.

moto stores REST APIs but never calls their Lambda integrations, so this front reads the deployed
API (stage, resources, methods, AWS_PROXY integration URIs) from moto and invokes the integrated
function through skydeck's Lambda runtime with an API Gateway proxy event. Requests must carry the
local token (kept in SKYDECK_HOME with mode 0600) where AWS would demand a SigV4 signature.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from moto.apigateway.models import apigateway_backends
from moto.core.models import DEFAULT_ACCOUNT_ID

from backend.core.local_credentials import LocalCredentials
from backend.localcloud import sigv4
from backend.localcloud.gateway import function_spec
from backend.localcloud.lambda_runtime import LambdaRuntime

log = logging.getLogger("skydeck.localcloud.api")

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
READ_TIMEOUT_S = 30.0
MAX_IN_FLIGHT = 8  # concurrent function invocations through the front
QUEUE_WAIT_S = 60.0
TOKEN_HEADER = "Authorization"
_SIGV4_KEY = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^/]+)/")
_FN_ARN_RE = re.compile(r"functions/(?P<arn>arn:aws:lambda:[^/]+)/invocations")


def _match(template: str, path: str) -> dict[str, str] | None:
    """Match '/a/{id}' against '/a/123'; returns the path parameters or None."""
    t_parts = [p for p in template.split("/") if p]
    p_parts = [p for p in path.split("/") if p]
    if len(t_parts) != len(p_parts):
        return None
    params: dict[str, str] = {}
    for t, p in zip(t_parts, p_parts, strict=True):
        if t.startswith("{") and t.endswith("}"):
            params[t[1:-1].rstrip("+")] = p
        elif t != p:
            return None
    return params


class TokenFile:
    """The token as its file says now: replaced, it is the new one; deleted, none is accepted (deleting
    the file revokes it). Re-read only when the file changes (one stat per request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._token: str | None = None
        self._lock = threading.Lock()

    def current(self) -> str | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        with self._lock:
            if self._seen != (st.st_ino, st.st_mtime_ns):
                try:
                    self._token = self.path.read_text().strip() or None
                except OSError:
                    return None
                self._seen = (st.st_ino, st.st_mtime_ns)
            return self._token


class ApiFront:
    FORBIDDEN = "Forbidden: missing or wrong credentials. Send the header that `skydeck api url` prints."

    def __init__(
        self,
        runtime: LambdaRuntime,
        region: str,
        token: str | TokenFile,
        max_in_flight: int = MAX_IN_FLIGHT,
        credentials: LocalCredentials | None = None,
    ) -> None:
        self.runtime = runtime
        self.region = region
        self.token = token
        self.credentials = credentials  # SigV4 with these is accepted too, as AWS_IAM takes it on AWS
        self.in_flight = threading.BoundedSemaphore(max_in_flight)

    def route(self, method: str, path: str) -> tuple[int, dict[str, Any]] | tuple[str, str, dict[str, str], str, str]:
        """Find (function ARN, resource template, path params, stage, base path) or an error (status, body).

        A path is /API/STAGE/... where API is the API's name (or its id): API Gateway gives every API a
        host of its own, here the API leads the path instead. The name, unlike the id, survives a restart
        of the local cloud (the replay mints new ids), so a URL a script keeps goes on working.
        /STAGE/... alone reaches the first API with that stage."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return 404, {"message": "Missing stage in path: use the URL from `skydeck api url`"}
        backend = apigateway_backends[DEFAULT_ACCOUNT_ID][self.region]
        apis = list(backend.apis.values())
        named = [a for a in apis if parts[0] in (a.id, a.name)]
        if named and len(parts) > 1:
            apis, parts = named[:1], parts[1:]
            base = f"/{path.split('/', 2)[1]}/{parts[0]}"
        else:
            base = f"/{parts[0]}"
        stage, rest = parts[0], "/" + "/".join(parts[1:])
        for api in apis:
            if stage not in api.stages:
                continue
            allowed: set[str] = set()
            for resource in list(api.resources.values()):
                params = _match(resource.get_path(), rest)
                if params is None:
                    continue
                methods = resource.resource_methods
                allowed |= set(methods)
                m = methods.get(method) or methods.get("ANY")
                if m is None or m.method_integration is None:
                    continue
                found = _FN_ARN_RE.search(m.method_integration.uri or "")
                if found:
                    return found.group("arn"), resource.get_path(), params, stage, base
            if allowed:
                return 405, {"message": f"{method} is not allowed here; allowed: {', '.join(sorted(allowed))}"}
            return 404, {"message": f"no route for {rest} in stage {stage}"}
        return 404, {"message": f"no deployed API has a stage named {stage!r}; deploy it: skydeck stacks deploy api"}

    def may_be_signed(self, headers: dict[str, str]) -> bool:
        """A SigV4 header with this cloud's access key: worth reading the body to check its signature."""
        match = _SIGV4_KEY.match(headers.get("authorization", ""))
        return bool(self.credentials and match and hmac.compare_digest(match[1], self.credentials.access_key_id))

    def signed(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> bool:
        """Signed with SigV4 (service execute-api) and the local credentials, as `curl --aws-sigv4` signs."""
        if not self.may_be_signed(headers) or self.credentials is None:
            return False
        environ = {
            "REQUEST_METHOD": method, "RAW_URI": raw_path, "QUERY_STRING": urlsplit(raw_path).query,
            "CONTENT_TYPE": headers.get("content-type"), "CONTENT_LENGTH": headers.get("content-length"),
            **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
        }  # fmt: skip
        return sigv4.check(environ, body, self.credentials) is None

    def authorized(self, headers: dict[str, str]) -> bool:
        raw = headers.get(TOKEN_HEADER.lower(), "")
        supplied = raw[7:] if raw.lower().startswith("bearer ") else ""
        token = self.token.current() if isinstance(self.token, TokenFile) else self.token
        return bool(supplied and token) and hmac.compare_digest(supplied.encode(), str(token).encode())

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if not (self.authorized(headers) or self.signed(method, raw_path, headers, body)):
            return 403, {"Content-Type": "application/json"}, json.dumps({"message": self.FORBIDDEN}).encode()
        split = urlsplit(raw_path)
        routed = self.route(method, split.path)
        if isinstance(routed[0], int):
            status, payload = routed
            return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()
        arn, template, params, stage, base = routed
        query = dict(parse_qsl(split.query))
        event = {
            "resource": template,
            "path": split.path[len(base) :] or "/",
            "httpMethod": method,
            "headers": {k: v for k, v in headers.items() if k != TOKEN_HEADER.lower()},
            "queryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "stage": stage,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "httpMethod": method,
                "resourcePath": template,
            },
            "body": body.decode("utf-8", "replace") if body else None,
            "isBase64Encoded": False,
        }
        try:
            spec = function_spec(arn, self.region)
        except Exception:
            return 502, {"Content-Type": "application/json"}, b'{"message": "the integrated function does not exist"}'
        # At most MAX_IN_FLIGHT invocations at once: a burst queues here (briefly) instead of starting
        # a Lambda worker process per request on a laptop.
        if not self.in_flight.acquire(timeout=QUEUE_WAIT_S):
            return (
                503,
                {"Content-Type": "application/json", "Retry-After": "1"},
                b'{"message": "the local API is busy; retry in a moment"}',
            )
        try:
            outcome = self.runtime.invoke(spec, event)
        finally:
            self.in_flight.release()
        result = outcome.payload
        if not outcome.ok or not isinstance(result, dict) or "statusCode" not in result:
            # API Gateway's own answer, and nothing of the function's error: its type, message and stack
            # (file paths of this machine) go to the local cloud's log, as they go to CloudWatch on AWS
            log.warning("the jobs API function failed: %s", json.dumps(result)[:4000])
            return 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
        out_headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body_out = result.get("body") or ""
        return (
            int(result["statusCode"]),
            out_headers,
            body_out.encode() if isinstance(body_out, str) else bytes(body_out),
        )


def serve(front: ApiFront, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # from the first byte: a client that never finishes its headers is dropped, as one whose body
        # never comes is, instead of holding a thread
        timeout = READ_TIMEOUT_S

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the console has its own logs
            pass

        def _do(self) -> None:
            self.connection.settimeout(READ_TIMEOUT_S)  # a client that announces a body and sends none
            headers = {k.lower(): v for k, v in self.headers.items()}
            # before the body is read (no thread held for a stranger): a token, or a signature by our key
            if not (front.authorized(headers) or front.may_be_signed(headers)):
                self._refuse(403, front.FORBIDDEN)
                return
            raw_length = (self.headers.get("Content-Length") or "0").strip()
            if not raw_length.isdigit():
                self._refuse(400, f"Content-Length must be a whole number of bytes, not {raw_length!r}")
                return
            length = int(raw_length)
            if length > MAX_BODY:
                self._send(413, {"Content-Type": "application/json"}, b'{"message": "Request Too Long"}')
                return
            try:
                body = self.rfile.read(length) if length else b""
            except TimeoutError:
                self._refuse(408, f"the body ended early: Content-Length said {length} bytes")
                return
            if len(body) < length:
                self._refuse(400, f"the body ended early: Content-Length said {length} bytes, got {len(body)}")
                return
            try:
                status, out_headers, payload = front.handle(self.command, self.path, headers, body)
            except Exception as exc:  # never let one request take the front down
                status, out_headers, payload = (
                    500,
                    {"Content-Type": "application/json"},
                    json.dumps({"message": f"local API front error: {exc}"}).encode(),
                )
            self._send(status, out_headers, payload)

        def _refuse(self, status: int, message: str) -> None:
            self.close_connection = True
            self._send(status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode())

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _do

    server = _FrontServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


class _FrontServer(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of new connections beyond it has its SYNs dropped,
    # and each such client waits out TCP's 1 s retransmit before it is even accepted
    request_queue_size = 128
