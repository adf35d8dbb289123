"""The local cloud's HTTP handler: one connection serves a client's requests one after another.

werkzeug's development server answers one request a connection ("Connection: close", then it reads and
drops whatever the client sent next, since http.server cannot skip a body the application left unread).
Every boto3 call then made a new connection, and the server a new thread for it: a third of a
request's CPU, on the server's side and on the client's. AWS's endpoints keep connections open.

Here the gateway reads every request's body whole (by its Content-Length, or to its last chunk) before
it answers, so the next request on the connection is intact. A request whose body came chunked still
closes its connection (its end is werkzeug's reader's to find), as does one whose answer failed.

The environ is werkzeug's (moto's handler adds the headers werkzeug drops); the answer is buffered and
sent with its length, as every moto answer is whole in memory anyway.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

from backend.localcloud.api_front import READ_TIMEOUT_S

log = logging.getLogger(__name__)

_OWN_HEADERS = {"content-length", "connection", "transfer-encoding"}


class KeepAliveHandler(MotoRequestHandler):
    """moto's handler, answering each request with its length and keeping the connection for the next;
    a connection idle (or slow to send its headers or body) for READ_TIMEOUT_S is closed, so that none
    holds a thread for good."""

    timeout = READ_TIMEOUT_S
    protocol_version = "HTTP/1.1"
    # an answer's headers and body leave in one write, flushed after each request (http.server does):
    # sent apart on a kept connection, the body waited on the client's delayed ACK, 40 ms a request
    wbufsize = -1

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").strip().lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        environ = self.make_environ()
        answer: list[Any] = []
        body: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            answer[:] = [status, headers]
            return body.append

        try:
            result = self.server.app(environ, start_response)
            try:
                body.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:
            log.exception("error answering %s %s", self.command, self.path)
            answer[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
            body[:] = [b"internal error in the local cloud"]
            chunked = True  # what the application read of the body is unknown: close the connection
        status, headers = answer
        code, _, reason = status.partition(" ")
        data = b"".join(body)
        self.send_response(int(code), reason)
        for key, value in headers:
            if key.lower() not in _OWN_HEADERS:
                self.send_header(key, value)
        if self.command == "HEAD":  # the length of what a GET would send, as the application said it
            length = next((v for k, v in headers if k.lower() == "content-length"), None)
            if length is not None:
                self.send_header("Content-Length", length)
            data = b""
        elif int(code) in (204, 304):
            data = b""
        else:
            self.send_header("Content-Length", str(len(data)))
        if chunked:
            self.send_header("Connection", "close")
        self.end_headers()
        if data:
            self.wfile.write(data)
