"""`skydeck local repair`: keep what a damaged journal still holds, set the file aside, start afresh.

Rows are copied one at a time into a new journal until the damaged file stops answering; whatever
cannot be read stays in the set-aside copy for a person (or sqlite3's `.recover`) to look at.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from backend.core.errors import SkydeckError
from backend.core.paths import Home
from backend.localcloud.journal import Journal, check_record

_SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True)
class RepairReport:
    set_aside: str
    requests_kept: int
    messages_kept: int
    stopped_at: str  # why copying ended: "end of journal" or the read error

    def to_dict(self) -> dict[str, object]:
        return {
            "set_aside": self.set_aside,
            "requests_kept": self.requests_kept,
            "messages_kept": self.messages_kept,
            "stopped_at": self.stopped_at,
        }


def _salvage(source: Path, target: Journal) -> tuple[int, int, str]:
    kept_requests = kept_messages = 0
    reason = "end of journal"
    try:
        db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        return 0, 0, str(exc)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
        answer = "response" if "response" in columns else "NULL"
        checksum = "checksum" if "checksum" in columns else "NULL"
        cursor = db.execute(
            f"SELECT seq, method, path, query, headers, body, {answer}, {checksum} FROM requests ORDER BY seq"
        )
        for seq, method, path, query, headers, body, response, check in cursor:
            body, response = bytes(body or b""), bytes(response or b"")
            damage = check_record(seq, method, path, query, headers, body, response, check)
            if damage:  # what follows a damaged record may depend on it: keep what came before
                reason = damage
                break
            target.record_raw(method, path, query, headers, body, response)
            kept_requests += 1
    except sqlite3.DatabaseError as exc:
        reason = f"requests: {exc}"
    try:
        rows = db.execute(
            "SELECT id, account, region, queue, body, attributes, sent_ms, receive_count FROM messages"
        ).fetchall()
        target.restore_messages(rows)
        kept_messages = len(rows)
    except sqlite3.DatabaseError as exc:
        reason = f"{reason}; messages: {exc}" if reason != "end of journal" else f"messages: {exc}"
    finally:
        db.close()
    return kept_requests, kept_messages, reason


def repair(home: Home) -> RepairReport:
    from backend.localcloud import control

    if control.status(home).running:
        raise SkydeckError("the local cloud is running; stop it first: skydeck local down")
    journal = home.local_journal
    if not journal.exists():
        raise SkydeckError(f"no journal at {journal}: nothing to repair")
    aside = journal.with_name(f"journal.damaged-{time.strftime('%Y%m%d-%H%M%S')}.sqlite")
    shutil.move(str(journal), aside)
    for suffix in _SIDE_FILES:
        side = Path(f"{journal}{suffix}")
        if side.exists():
            shutil.move(str(side), f"{aside}{suffix}")
    fresh = Journal(journal)
    try:
        requests, messages, reason = _salvage(aside, fresh)
    finally:
        fresh.close()
    return RepairReport(str(aside), requests, messages, reason)
