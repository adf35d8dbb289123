"""The credentials the embedded local cloud accepts: random per home, in a file only its owner reads."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalCredentials:
    access_key_id: str
    secret_access_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> LocalCredentials:
        """The home's local credentials, made on first use (random, readable by the owner only)."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            made = {
                "access_key_id": "SKYDECK" + secrets.token_hex(8).upper(),
                "secret_access_key": secrets.token_urlsafe(30),
            }
            try:
                fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # made by another process at the same moment: read theirs
            else:
                with os.fdopen(fd, "w") as f:
                    json.dump(made, f)
        os.chmod(path, 0o600)
        raw = json.loads(path.read_text())
        return cls(raw["access_key_id"], raw["secret_access_key"])

    @classmethod
    def load(cls, path: Path) -> LocalCredentials:
        raw = json.loads(path.read_text())
        return cls(raw["access_key_id"], raw["secret_access_key"])
