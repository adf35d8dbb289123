"""Text that came from the cloud, made fit to show: the one rule both front ends apply.

A job's name or error, a host's boot record, a log line, a run's summary: anyone who can write a
record, a log or a host's prefix chooses these bytes. Shown as they are, an escape sequence would set
the terminal's title, write its clipboard or clear the screen, and rich or Textual markup would become
a link or end the command with a MarkupError. `shown` turns every control character into its visible
escape (`\\x1b`), and cuts a long value with a marker. `markup_safe` does that and escapes markup, for
text placed into a markup string.
"""

from __future__ import annotations

import re

LIMIT = 4000  # characters of one value shown before the cut
# C0 and C1 controls, DEL, and the bidirectional overrides that make text read other than it runs
_OTHER_CONTROLS = "\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f{_OTHER_CONTROLS}]")
_CONTROL_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHER_CONTROLS}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# rich's and Textual's markup: a tag opens with [ and a letter, #, /, @ or ], as rich.markup.escape sees it
_TAG = re.compile(r"(\\*)(\[[a-zA-Z#/@\]][^\[]*?\])")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def shown(value: object, limit: int | None = LIMIT, keep_newlines: bool = False) -> str:
    """`value` as text with every control character visible (never interpreted), cut after `limit`
    characters with a marker saying how many were left out. `keep_newlines` keeps line breaks, for
    text shown over several lines."""
    text = value if isinstance(value, str) else str(value)
    text = (_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL).sub(_visible, text)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit:,} more characters)"
    return text


def escape_markup(text: str) -> str:
    """Markup tags in `text` printed as text: every [tag] gets a backslash, as rich.markup.escape does;
    a backslash that ends the text would escape what follows it, so it is doubled."""
    text = _TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def markup_safe(value: object, limit: int | None = LIMIT, keep_newlines: bool = False) -> str:
    """`shown(value)`, then escaped for a place where markup is read (a rich print, a Textual Static)."""
    return escape_markup(shown(value, limit, keep_newlines))
