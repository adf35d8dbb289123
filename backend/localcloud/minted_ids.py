"""Ids that the server mints, carried from a recorded answer onto the answer a replay gets.

Some answers carry an id that later requests use: a multipart upload id, a change set or stack ARN,
an SNS subscription ARN, an instance id. moto mints a new one when the journal is replayed, so the
recorded later requests name an id that no longer exists. Replay compares each recorded answer with
the new one, field by field; where an id-like value differs, the old value is mapped onto the new
one, and every later request is rewritten through that map before it is sent.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

# Fields that differ on every answer without naming anything a later request could use.
_VOLATILE_KEY = re.compile(r"(?i)(requestid|date|time|timestamp|lastmodified|expir|checksum)")
_ID_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=\-]{7,2047}\Z")
_DATE_LIKE = re.compile(r"^\d{4}-\d\d-\d\d")
_TEXT_TYPES = ("json", "xml", "x-www-form-urlencoded", "text/")
MAX_REWRITTEN_BODY = 1 << 20


def _leaves(raw: bytes) -> list[tuple[str, str]]:
    """(key path, value) for each string leaf of a JSON or XML answer; [] when it is neither."""
    text = raw.strip()
    if not text:
        return []
    if text[:1] in (b"{", b"["):
        try:
            return list(_json_leaves(json.loads(text), ""))
        except ValueError:
            return []
    if text[:1] == b"<":
        try:
            return list(_xml_leaves(ET.fromstring(text), ""))
        except ET.ParseError:
            return []
    return []


def _json_leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_leaves(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_leaves(item, f"{path}/{i}")
    elif isinstance(value, str):
        yield path, value


def _xml_leaves(element: ET.Element, path: str) -> Iterator[tuple[str, str]]:
    tag = element.tag.rsplit("}", 1)[-1]
    here = f"{path}/{tag}"
    if element.text and element.text.strip() and not len(element):
        yield here, element.text.strip()
    for i, child in enumerate(element):
        yield from _xml_leaves(child, f"{here}[{i}]")


def minted(recorded: bytes, replayed: bytes) -> dict[str, str]:
    """Old id -> new id for every id-like field whose value the replay changed."""
    old, new = dict(_leaves(recorded)), dict(_leaves(replayed))
    found: dict[str, str] = {}
    for key, before in old.items():
        after = new.get(key)
        if after is None or after == before or _VOLATILE_KEY.search(key.rsplit("/", 1)[-1]):
            continue
        if _ID_LIKE.match(before) and _ID_LIKE.match(after) and not _DATE_LIKE.match(before):
            found[before] = after
    return found


class IdMap:
    """Rewrites recorded requests so that they name the ids the replay minted."""

    def __init__(self) -> None:
        self._map: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._forms: dict[str, str] = {}
        self._pending: set[str] = set()  # forms learned since the pattern was last compiled

    def __len__(self) -> int:
        return len(self._map)

    def learn(self, mapping: dict[str, str]) -> None:
        fresh = {k: v for k, v in mapping.items() if self._map.get(k) != v}
        if not fresh:
            return
        self._map.update(fresh)
        # an id appears raw, percent-encoded (paths, query strings) or form-encoded (+ for space)
        for old, new in fresh.items():
            forms = [(old, new), (quote(old, safe=""), quote(new, safe=""))]
            forms.append((quote_plus(old, safe=""), quote_plus(new, safe="")))
            for form_old, form_new in forms:
                self._forms[form_old] = form_new
                self._pending.add(form_old)

    def _compiled(self, text: str) -> re.Pattern[str] | None:
        """The pattern of every known form, longest first. Compiling it costs as much as the ids known
        (an hour's replay learned hundreds, one at a time): it is compiled again only when a text holds
        an id learned since, never at each learning."""
        if self._pending and (self._pattern is None or any(form in text for form in self._pending)):
            keys = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(k) for k in keys))
            self._pending.clear()
        return self._pattern

    def known(self, old: str) -> bool:
        return old in self._map

    def rewrite_text(self, text: str) -> str:
        if not self._forms or not text:
            return text
        pattern = self._compiled(text)
        if pattern is None:
            return text
        return pattern.sub(lambda m: self._forms[m.group(0)], text)

    def rewrite_body(self, body: bytes, content_type: str) -> bytes:
        """Textual bodies are rewritten; object data (an S3 part, a zip) is never touched."""
        if not self._forms or not body or len(body) > MAX_REWRITTEN_BODY:
            return body
        if not any(t in content_type for t in _TEXT_TYPES):
            return body
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        return self.rewrite_text(text).encode("utf-8")


def upload_id_of(query: str) -> str | None:
    values = parse_qs(query, keep_blank_values=True).get("uploadId")
    return values[0] if values else None
