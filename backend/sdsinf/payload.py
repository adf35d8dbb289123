"""`--payload FILE`: one of the original's payload files, read by lambda_src.sdsinf.payload (the
deployed coordinators read payloads with the same code)."""

from __future__ import annotations

import json
from pathlib import Path

from backend.core.errors import ConfigError
from lambda_src.sdsinf.payload import OriginalPayload, PayloadError, parse_payload

__all__ = ["OriginalPayload", "load_payload", "parse_payload"]


def load_payload(path: Path) -> OriginalPayload:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--payload {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"--payload {path}: not valid JSON ({exc})") from None
    try:
        return parse_payload(doc)
    except PayloadError as exc:
        raise ConfigError(str(exc)) from None
