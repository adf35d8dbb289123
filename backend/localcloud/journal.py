"""Durable state for the local cloud: a write-ahead journal in SQLite.

moto keeps everything in memory. Every request that changes state (stacks, tables, objects,
functions) is appended to the journal before its answer is sent, and replayed into a fresh moto on
start. Queued SQS messages are kept apart, as rows that come and go with send and delete, because
replaying receives and deletes would not work (receipt handles are random) and consumed messages
would come back. WAL mode with one commit per write survives a `kill -9` of the process.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

_READ_PREFIXES = (
    "Get",
    "List",
    "Describe",
    "Query",
    "Scan",
    "BatchGet",
    "Receive",
    "Validate",
    "Estimate",
    "Head",
    "Lookup",
    "Search",
    "Select",
    "TransactGet",
    "Poll",
    "Simulate",
    "Detect",
)
# SQS data-plane and fan-out calls: their effect is captured by the message rows instead.
_NOT_JOURNALED = {
    "SendMessage",
    "SendMessageBatch",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "PurgeQueue",
    "Publish",
    "PublishBatch",
    "Invoke",
    "InvokeAsync",
}
# Everything a request means travels in its headers too (x-amz-copy-source, x-amz-meta-*, tagging,
# encryption, content-type), so all are kept but those that describe one connection.
_TRANSPORT_HEADERS = frozenset(
    {
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "expect",
        "accept",
        "accept-encoding",
        "user-agent",
        "amz-sdk-invocation-id",
        "amz-sdk-request",
    }
)
JOURNAL_DAMAGED_EXIT = 4  # the server's exit code when its journal cannot be read
# Answers are kept (for replay to learn the ids the server minted) up to this size.
MAX_KEPT_ANSWER = 64 * 1024


_SIGNATURE_RE = re.compile(r",\s*Signature=[0-9a-fA-F]+")
_SECRET_HEADERS = frozenset({"x-amz-security-token"})


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    """What a record keeps of a request's headers: no transport detail, no signature and no session
    token (replay needs the credential scope only; a kept signature would be a credential on disk)."""
    kept = {k: v for k, v in headers.items() if k not in _TRANSPORT_HEADERS and k not in _SECRET_HEADERS}
    if "authorization" in kept:
        kept["authorization"] = _SIGNATURE_RE.sub("", kept["authorization"])
    return kept


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def record_checksum(method: str, path: str, query: str, headers_json: str, body: bytes, response: bytes) -> str:
    """A record's checksum: its request's digest and its answer's, so the answer can be settled later."""
    return f"{_digest(method, path, query, headers_json, body)}:{_digest(response) if response else ''}"


_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/")


def credential_scope(headers: dict[str, str]) -> tuple[str, str] | None:
    """(region, service) a signed request names in its credential scope; None if it is not signed."""
    match = _SCOPE_RE.search(headers.get("authorization", ""))
    return (match["region"], match["service"]) if match else None


_FORM_ACTION = re.compile(rb"(?:^|&)Action=([^&]*)")


def request_action(method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    """The AWS action a request performs, as well as can be told without parsing each protocol."""
    target = headers.get("x-amz-target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    ctype = headers.get("content-type", "")
    if method == "POST" and "x-www-form-urlencoded" in ctype:
        # only the Action field: decoding a whole form body (an SNS batch is 256 KiB of %-escapes)
        # cost more than the request's own handling
        found = _FORM_ACTION.search(body)
        if found and found[1]:
            return unquote_plus(found[1].decode("ascii", "replace"))
    if "/invocations" in path or "/invoke-async" in path:
        return "Invoke"
    return {"GET": "Get", "HEAD": "Head"}.get(method, method.title())


def is_journaled(method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
    if path.startswith("/moto-api") or path.startswith("/_skydeck"):
        return False
    action = request_action(method, path, headers, body)
    return not (action in _NOT_JOURNALED or action.startswith(_READ_PREFIXES))


def check_record(
    seq: int, method: Any, path: Any, query: Any, headers: Any, body: bytes, response: bytes, checksum: str | None
) -> str:
    """Why a record cannot be trusted ("" when it can). Records from before checksums are trusted."""
    if checksum is None:
        return ""
    if not all(isinstance(v, str) for v in (method, path, query, headers)):
        return f"record {seq} is not a request any more"
    expected = record_checksum(method, path, query, headers, body, response)
    if expected == checksum:
        return ""
    part = "request" if expected.split(":")[0] != str(checksum).split(":")[0] else "stored answer"
    return f"record {seq} fails its checksum (its {part} changed on disk)"


class JournalDamaged(Exception):
    """The journal file cannot be read as a journal: `skydeck local repair` keeps what can be read."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"the local cloud's journal {path} is damaged ({reason}); "
            "run `skydeck local repair` to keep what can be read and set the file aside"
        )
        self.path = path
        self.reason = reason


class JournalInUse(JournalDamaged):
    """Another program holds the journal open (the server keeps it to itself): nothing is damaged."""

    def __init__(self, path: Path, reason: str) -> None:
        Exception.__init__(
            self,
            f"the local cloud's journal {path} is open in another program ({reason}); close it (a sqlite3 "
            "shell, a viewer) and start the local cloud again",
        )
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    seq: int = 0
    response: bytes = b""


class Journal:
    """One SQLite file: `requests` to replay, `messages` still queued."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._create()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise JournalInUse(path, str(exc)) from None
            raise JournalDamaged(path, str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise JournalDamaged(path, str(exc)) from None

    def _create(self) -> None:
        with self._lock:
            # one process owns the journal (the server's lock says so): in exclusive mode SQLite keeps the
            # WAL index in its own memory, and never maps a -shm file that a full disk or an unwritable
            # file would turn into a SIGBUS that kills the server without a word
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS requests (seq INTEGER PRIMARY KEY AUTOINCREMENT, method TEXT, "
                "path TEXT, query TEXT, headers TEXT, body BLOB, response BLOB)"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
            if "response" not in columns:  # a journal written before answers were kept
                self._db.execute("ALTER TABLE requests ADD COLUMN response BLOB")
            if "checksum" not in columns:  # a journal written before records carried one: those are trusted
                self._db.execute("ALTER TABLE requests ADD COLUMN checksum TEXT")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, account TEXT, region TEXT, queue TEXT, "
                "body TEXT, attributes TEXT, sent_ms INTEGER, receive_count INTEGER DEFAULT 0)"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- requests ------------------------------------------------------------------------------
    def begin(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> int:
        """Journal a change before it is applied; `settle` keeps its answer, or drops it if it failed."""
        headers_json = json.dumps(_kept_headers(headers))
        checksum = record_checksum(method, path, query, headers_json, body, b"")
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO requests (method, path, query, headers, body, checksum) VALUES (?, ?, ?, ?, ?, ?)",
                (method, path, query, headers_json, body, checksum),
            )
            return int(cursor.lastrowid or 0)

    def settle(self, seq: int, answer: bytes | None) -> None:
        with self._lock:
            if answer is None:  # refused or failed: nothing to replay
                self._db.execute("DELETE FROM requests WHERE seq = ?", (seq,))
            elif len(answer) <= MAX_KEPT_ANSWER:
                self._db.execute(
                    "UPDATE requests SET response = ?, checksum = substr(checksum, 1, 65) || ? WHERE seq = ?",
                    (answer, _digest(answer) if answer else "", seq),
                )

    def record_raw(
        self, method: str, path: str, query: str, headers_json: str, body: bytes, response: bytes = b""
    ) -> None:
        """A row copied from another journal as it stands (used by `local repair`)."""
        checksum = record_checksum(method, path, query, headers_json, body, response)
        with self._lock:
            self._db.execute(
                "INSERT INTO requests (method, path, query, headers, body, response, checksum) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (method, path, query, headers_json, body, response, checksum),
            )

    def restore_messages(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO messages (id, account, region, queue, body, attributes, sent_ms, "
                "receive_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def rewrite(self, drop: set[int], append: list[tuple[str, str, str, dict[str, str], bytes]]) -> None:
        """Drop some records and append others, in one transaction (compaction)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM requests WHERE seq = ?", [(seq,) for seq in sorted(drop)])
                rows = [(m, p, q, json.dumps(h), b) for m, p, q, h, b in append]
                self._db.executemany(
                    "INSERT INTO requests (method, path, query, headers, body, checksum) VALUES (?, ?, ?, ?, ?, ?)",
                    [(*row, record_checksum(*row, b"")) for row in rows],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            if drop:
                # SQLite keeps a dropped row's pages as free space: the file (and every later start's
                # reading of it) stays as large as before, so give them back
                self._db.execute("VACUUM")

    def requests(self) -> Iterator[Recorded]:
        """Recorded requests in order, read in batches so that a long journal is never all in memory."""
        last = 0
        while True:
            with self._lock:
                try:
                    rows = self._db.execute(
                        "SELECT seq, method, path, query, headers, body, response, checksum FROM requests "
                        "WHERE seq > ? ORDER BY seq LIMIT 256",
                        (last,),
                    ).fetchall()
                except sqlite3.DatabaseError as exc:
                    raise JournalDamaged(self.path, f"{exc} (after record {last})") from None
            if not rows:
                return
            for seq, method, path, query, headers, body, response, checksum in rows:
                last = seq
                body, response = bytes(body or b""), bytes(response or b"")
                damage = check_record(seq, method, path, query, headers, body, response, checksum)
                if damage:
                    raise JournalDamaged(self.path, damage)
                try:
                    kept = json.loads(headers)
                except (TypeError, ValueError):
                    raise JournalDamaged(self.path, f"record {seq}: its headers are not JSON") from None
                yield Recorded(method, path, query, kept, body, seq, response)

    def count(self) -> dict[str, int]:
        with self._lock:
            r = self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
            m = self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        return {"requests": r, "messages": m}

    # -- messages (a fast_sqs.MessageListener) -------------------------------------------------
    def on_send(self, queue: Any, message: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO messages "
                "(id, account, region, queue, body, attributes, sent_ms, receive_count) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.id,
                    queue.account_id,
                    queue.region,
                    queue.name,
                    message.body,
                    json.dumps(message.message_attributes or {}),
                    int(message.sent_timestamp or 0),
                    int(message.approximate_receive_count or 0),
                ),
            )

    def on_receive(self, queue: Any, message: Any) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE messages SET receive_count = ? WHERE id = ?",
                (int(message.approximate_receive_count), message.id),
            )

    def on_delete(self, queue: Any, message: Any) -> None:
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE id = ?", (message.id,))

    def on_move(self, source: Any, target: Any, message: Any) -> None:
        with self._lock:
            self._db.execute("UPDATE messages SET queue = ? WHERE id = ?", (target.name, message.id))

    def on_purge(self, queue: Any) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM messages WHERE account = ? AND region = ? AND queue = ?",
                (queue.account_id, queue.region, queue.name),
            )

    def stored_messages(self) -> list[tuple[str, str, str, str, str, dict[str, Any], int, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, account, region, queue, body, attributes, sent_ms, receive_count "
                "FROM messages ORDER BY sent_ms"
            ).fetchall()
        return [(i, a, r, q, b, json.loads(attrs), s, c) for i, a, r, q, b, attrs, s, c in rows]

    def forget_messages(self, ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
