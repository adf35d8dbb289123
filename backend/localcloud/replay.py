"""Replaying the journal into a fresh moto, one record at a time, never stopping at a bad one."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs

from backend.localcloud.journal import Journal, Recorded, request_action
from backend.localcloud.minted_ids import IdMap, minted, upload_id_of

log = logging.getLogger("skydeck.localcloud")

_MESSAGE_RE = re.compile(rb"<Message>(.*?)</Message>|\"[Mm]essage\"\s*:\s*\"(.*?)\"", re.S)
_UPLOAD_ID_RE = re.compile(rb"<UploadId>([^<]+)</UploadId>")
MAX_LISTED_FAILURES = 50


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


@dataclass(frozen=True)
class NotRestored:
    """One recorded change the replay could not apply: what it was and why."""

    seq: int
    action: str
    target: str
    reason: str


@dataclass
class ReplayReport:
    replayed: int = 0
    failed: int = 0
    ids_mapped: int = 0
    seconds: float = 0.0
    not_restored: list[NotRestored] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["not_restored"] = [asdict(n) for n in self.not_restored]
        return out


def _reason(answer: Answer) -> str:
    match = _MESSAGE_RE.search(answer.body[:4096])
    detail = (match.group(1) or match.group(2)).decode("utf-8", "replace").strip() if match else ""
    return f"HTTP {answer.status}" + (f": {detail}" if detail else "")


def _rewritten(rec: Recorded, ids: IdMap, open_uploads: dict[str, str]) -> Recorded:
    upload_id = upload_id_of(rec.query)
    if upload_id and not ids.known(upload_id) and rec.path in open_uploads:
        # A journal written before answers were kept: the upload this part belongs to is the last
        # one started for the same object.
        ids.learn({upload_id: open_uploads[rec.path]})
    if not len(ids):
        return rec
    ctype = rec.headers.get("content-type", "")
    return Recorded(
        rec.method,
        ids.rewrite_text(rec.path),
        ids.rewrite_text(rec.query),
        {k: ids.rewrite_text(v) if k.startswith("x-amz-copy-source") else v for k, v in rec.headers.items()},
        ids.rewrite_body(rec.body, ctype),
        rec.seq,
        rec.response,
    )


def replay(
    journal: Journal,
    send: Callable[[Recorded], Answer],
    ids: IdMap | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> ReplayReport:
    """Feed every recorded request to `send`; a record that fails is reported and skipped.

    `ids` learns each recorded id the replay minted anew (old -> new); `on_progress(done, total)` is
    called every 500 records."""
    t0 = time.time()
    total = journal.count()["requests"]
    report = ReplayReport()
    ids = IdMap() if ids is None else ids
    open_uploads: dict[str, str] = {}
    for rec in journal.requests():
        report.replayed += 1
        if report.replayed % 500 == 0:
            on_progress(report.replayed, total)
        action = request_action(rec.method, rec.path, rec.headers, rec.body)
        answer: Answer | None = None
        try:
            sent = _rewritten(rec, ids, open_uploads)
            got = send(sent)
        except Exception as exc:  # noqa: BLE001 - one bad record must not keep the cloud down
            reason = f"{type(exc).__name__}: {exc}"
        else:
            answer = got
            reason = _reason(got) if got.status >= 400 else ""
        if answer is not None and not reason:
            if rec.response:
                ids.learn(minted(rec.response, answer.body))
            if rec.method == "POST" and "uploads" in parse_qs(rec.query, keep_blank_values=True):
                found = _UPLOAD_ID_RE.search(answer.body)
                if found:
                    open_uploads[rec.path] = found.group(1).decode()
            continue
        report.failed += 1
        log.warning("journal record %d (%s %s) was not restored: %s", rec.seq, action, rec.path, reason)
        if len(report.not_restored) < MAX_LISTED_FAILURES:
            report.not_restored.append(NotRestored(rec.seq, action, f"{rec.method} {rec.path}", reason[:300]))
    report.ids_mapped = len(ids)
    report.seconds = round(time.time() - t0, 3)
    return report
