"""The one place that makes AWS clients: botocore's, and boto3's for S3. The profile decides region,
credentials and endpoint."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from backend.core.errors import LocalCloudDown
from backend.core.local_credentials import LocalCredentials
from backend.core.paths import Home
from backend.core.profiles import Profile


def _retry_config() -> Any:
    from botocore.config import Config

    return Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=5, read_timeout=70)


def local_endpoint(home: Home) -> str:
    """The moto endpoint of a running local cloud, read from its state file."""
    try:
        state = json.loads(home.local_state_file.read_text())
        return state["endpoint"]
    except (OSError, ValueError, KeyError):
        raise LocalCloudDown("the local cloud is not running; start it with: skydeck local up") from None


def local_credentials(home: Home) -> LocalCredentials:
    """The credentials the local cloud accepts (written by `local up`, mode 0600)."""
    try:
        return LocalCredentials.load(home.local_credentials_file)
    except (OSError, ValueError, KeyError):
        raise LocalCloudDown(
            f"no local cloud credentials in {home.local_credentials_file}; start it with: skydeck local up"
        ) from None


@dataclass
class Clients:
    """AWS clients for one profile, made on first use and kept (clients are thread-safe)."""

    profile: Profile
    home: Home
    endpoint: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # boto3 and s3transfer take a sixth of a second to import, and only S3's transfer methods need them:
        # every other service's client is botocore's own (boto3 adds nothing to a client but S3's), and
        # commands that never reach AWS (sdsinf infer, --help) import neither
        import botocore.session

        from backend.core.botocore_data import quick_loader

        if self.profile.is_local and self.endpoint is None:
            self.endpoint = local_endpoint(self.home)
        self._core = botocore.session.Session(profile=None if self.profile.is_local else self.profile.aws_profile)
        self._core.register_component("data_loader", quick_loader(self._core.get_config_variable("data_path")))
        if self.profile.is_local:
            self._local = local_credentials(self.home)
            self._core.set_credentials(self._local.access_key_id, self._local.secret_access_key)
        self._core.set_config_variable("region", self.profile.region)
        self._boto3: Any = None

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._cache:
                self._cache[service] = self._make(service)
            return self._cache[service]

    def _make(self, service: str) -> Any:
        if service == "s3":  # upload_file, download_file and the rest are boto3's, injected at creation
            if self._boto3 is None:
                import boto3.session

                self._boto3 = boto3.session.Session(botocore_session=self._core, region_name=self.profile.region)
            return self._boto3.client("s3", endpoint_url=self.endpoint, config=_retry_config())
        return self._core.create_client(
            service, region_name=self.profile.region, endpoint_url=self.endpoint, config=_retry_config()
        )

    def deferred(self, service: str) -> Any:
        """A client made on its first use: a command that may not need it (`jobs list` never sends to the
        queue) does not pay the ~20 ms a client takes to build."""
        return _Deferred(self, service)

    def env(self) -> dict[str, str]:
        """Environment for a child process (executor, handler) that should reach the same cloud."""
        env = {"AWS_DEFAULT_REGION": self.profile.region, "AWS_REGION": self.profile.region}
        if self.profile.is_local:
            env.update(
                AWS_ACCESS_KEY_ID=self._local.access_key_id,
                AWS_SECRET_ACCESS_KEY=self._local.secret_access_key,
                AWS_ENDPOINT_URL=self.endpoint or "",
            )
        elif self.profile.aws_profile:
            env["AWS_PROFILE"] = self.profile.aws_profile
        return env


class _Deferred:
    def __init__(self, clients: Clients, service: str) -> None:
        self._clients = clients
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients.client(self._service), name)
