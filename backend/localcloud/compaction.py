"""Keeping the journal short, so that start-up stays quick however long the cloud has been used.

A long job writes its heartbeat to the jobs table every few seconds and re-publishes its log to S3
every ten: a day's history is tens of thousands of records, and replaying them all takes minutes.
Right after a replay, while nothing else can write, the journal is compacted:

- DynamoDB: every item write (PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems)
  is replaced by one unconditional PutItem per item that exists now, read from the replayed tables.
  Table creation and updates stay, ahead of them.
- S3: an object write that a later write or delete of the same key overwrote is dropped, unless
  that key is ever the source of a copy (its old content may have been copied before it changed). A
  batch delete (DeleteObjects) counts as a delete of each key it names.

Everything else (stacks, functions, queues, multipart uploads, ...) is kept as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

from backend.localcloud.journal import Journal, Recorded, credential_scope

_DDB_ITEM_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_DDB_PREFIX = "DynamoDB_20120810."
DEFAULT_COMPACT_AT = 2000  # records; $SKYDECK_JOURNAL_COMPACT_AT changes it
COMPACT_AT_BYTES = 32 * 1024 * 1024  # or this much journal, whatever the count


@dataclass(frozen=True)
class CompactionReport:
    before: int
    after: int
    items_snapshotted: int
    objects_superseded: int

    def to_dict(self) -> dict[str, int]:
        return {
            "before": self.before,
            "after": self.after,
            "items_snapshotted": self.items_snapshotted,
            "objects_superseded": self.objects_superseded,
        }


def _s3_object(rec: Recorded) -> tuple[str, str] | None:
    """(bucket, key) of a whole-object write or delete; None for anything else (parts, buckets, ...)."""
    if rec.method not in ("PUT", "DELETE"):
        return None
    query = parse_qs(rec.query, keep_blank_values=True)
    if query.keys() - {"x-id"}:  # ?uploadId, ?partNumber, ?tagging, ?acl, ...: not a plain object write
        return None
    parts = rec.path.lstrip("/").split("/", 1)
    if len(parts) != 2 or not parts[1]:
        return None
    return parts[0], parts[1]


def _batch_deleted(rec: Recorded) -> list[tuple[str, str]]:
    """(bucket, key) of each object a DeleteObjects (POST /BUCKET?delete) removed; [] for anything else."""
    if rec.method != "POST" or "delete" not in parse_qs(rec.query, keep_blank_values=True):
        return []
    bucket = rec.path.strip("/").split("/", 1)[0]
    try:
        root = ElementTree.fromstring(rec.body)
    except ElementTree.ParseError:
        return []
    return [(bucket, el.text or "") for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]


def _copy_source(rec: Recorded) -> tuple[str, str] | None:
    raw = rec.headers.get("x-amz-copy-source")
    if not raw:
        return None
    source = unquote(raw.split("?", 1)[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    return bucket, key


@dataclass
class Plan:
    """What one pass over the journal found: the records compaction drops, and where tables live."""

    records: int = 0
    ddb_writes: set[int] = field(default_factory=set)
    superseded: set[int] = field(default_factory=set)
    ddb_regions: set[str] = field(default_factory=set)


def plan(records: Iterable[Recorded]) -> Plan:
    """One pass, streaming (object data is never all in memory): the DynamoDB item writes, the S3
    object writes a later one overwrote, and the regions DynamoDB is used in."""
    found = Plan()
    copied: set[tuple[str, str]] = set()
    last_write: dict[tuple[str, str], int] = {}
    object_writes: list[tuple[int, tuple[str, str]]] = []
    for rec in records:
        found.records += 1
        region, service = credential_scope(rec.headers) or ("", "")
        if service == "dynamodb":
            found.ddb_regions.add(region)
        target = rec.headers.get("x-amz-target", "")
        if target.startswith(_DDB_PREFIX) and target[len(_DDB_PREFIX) :] in _DDB_ITEM_WRITES:
            found.ddb_writes.add(rec.seq)
            continue
        if service != "s3":
            continue
        source = _copy_source(rec)
        if source:
            copied.add(source)
        obj = _s3_object(rec)
        if obj:
            object_writes.append((rec.seq, obj))
            last_write[obj] = rec.seq
        for deleted in _batch_deleted(rec):  # a batch delete supersedes the writes before it, as one delete does
            last_write[deleted] = rec.seq
    found.superseded = {seq for seq, obj in object_writes if last_write[obj] != seq and obj not in copied}
    return found


def compact(journal: Journal, table_items: Callable[[set[str]], list[tuple[str, str, list[dict]]]]) -> CompactionReport:
    """Rewrite the journal as described above. `table_items(regions)` gives (region, table, items)
    for every DynamoDB table in those regions as the replay left it, items in DynamoDB's JSON form."""
    found = plan(journal.requests())
    puts = []
    for region, table, items in table_items(found.ddb_regions):
        headers = {
            "content-type": "application/x-amz-json-1.0",
            "x-amz-target": f"{_DDB_PREFIX}PutItem",
            # the region travels in the credential scope; replay does not check signatures
            "authorization": f"AWS4-HMAC-SHA256 Credential=compacted/20260101/{region}/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=compacted",
        }
        for item in items:
            puts.append(("POST", "/", "", headers, json.dumps({"TableName": table, "Item": item}).encode()))
    dropped = found.ddb_writes | found.superseded
    journal.rewrite(drop=dropped, append=puts)
    return CompactionReport(
        before=found.records,
        after=found.records - len(dropped) + len(puts),
        items_snapshotted=len(puts),
        objects_superseded=len(found.superseded),
    )
