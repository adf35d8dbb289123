"""Temporary credentials for the local cloud's roles, as STS hands them out on AWS.

Each component that runs as a role on AWS (a Lambda function, a fleet host, the SDS-Inf server)
gets an access key, a secret and a session token for that role here too. The gateway knows a
request's principal by its access key. Sessions are kept in a file only the owner reads, so that a
host that fetched its credentials before a restart still reaches the cloud after it.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_DURATION_S = 12 * 3600
REFRESH_BEFORE_S = 15 * 60  # botocore refreshes IMDS credentials this long before they expire


@dataclass(frozen=True)
class RoleSession:
    access_key_id: str
    secret_access_key: str
    session_token: str
    role_arn: str
    session_name: str
    expires_at: float

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def assumed_role_arn(self) -> str:
        account = self.role_arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.role_name}/{self.session_name}"

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    def env(self) -> dict[str, str]:
        """The environment variables a process runs as this role with (as Lambda sets them)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def expiration_iso(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at))


class RoleSessions:
    """Every live session, by access key; thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._by_key: dict[str, RoleSession] = {}
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text())
                now = time.time()
                for item in raw:
                    session = RoleSession(**item)
                    if not session.expired(now):
                        self._by_key[session.access_key_id] = session
            except (OSError, ValueError, TypeError):
                self._by_key = {}  # a damaged file only costs sessions, which are minted again

    def mint(self, role_arn: str, session_name: str, duration_s: int = DEFAULT_DURATION_S) -> RoleSession:
        session = RoleSession(
            access_key_id="ASIA" + secrets.token_hex(8).upper(),
            secret_access_key=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(48),
            role_arn=role_arn,
            session_name=session_name[:64] or "skydeck",
            expires_at=time.time() + duration_s,
        )
        with self._lock:
            now = time.time()
            self._by_key = {k: s for k, s in self._by_key.items() if not s.expired(now)}
            self._by_key[session.access_key_id] = session
            self._save()
        return session

    def find(self, access_key_id: str) -> RoleSession | None:
        with self._lock:
            return self._by_key.get(access_key_id)

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump([asdict(s) for s in self._by_key.values()], f)
        tmp.replace(self.path)
