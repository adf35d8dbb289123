"""Where skydeck keeps its state. Everything lives under SKYDECK_HOME (default ~/.skydeck)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        raw = os.environ.get("SKYDECK_HOME")
        root = Path(raw).expanduser() if raw else Path.home() / ".skydeck"
        return cls(root.resolve())

    @property
    def profiles_file(self) -> Path:
        return self.root / "profiles.yaml"

    @property
    def presets_dir(self) -> Path:
        return self.root / "presets"

    @property
    def local_dir(self) -> Path:
        return self.root / "local"

    @property
    def local_state_file(self) -> Path:
        return self.local_dir / "state.json"

    @property
    def local_token_file(self) -> Path:
        return self.local_dir / "api-token"

    @property
    def local_credentials_file(self) -> Path:
        return self.local_dir / "credentials"

    @property
    def local_replay_progress(self) -> Path:
        """Written while the local cloud replays its journal: how far it is."""
        return self.local_dir / "starting.json"

    @property
    def local_lock(self) -> Path:
        return self.local_dir / "server.lock"

    @property
    def local_journal(self) -> Path:
        return self.local_dir / "journal.sqlite"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def ensure(self) -> Home:
        if self.root.exists() and not self.root.is_dir():
            from backend.core.errors import ConfigError

            raise ConfigError(f"SKYDECK_HOME={self.root} is a file; point it at a directory")
        for d in (self.root, self.local_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
        return self

    def tighten(self) -> None:
        """Every file under the home 0600 and every folder 0700: it holds credentials, a journal of
        every change and the logs. Homes written by older versions are brought into line here."""
        for folder, dirs, files in os.walk(self.root):
            os.chmod(folder, 0o700)
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o600)
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]


PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def stacks_dir() -> Path:
    """The CloudFormation templates: `stacks/` in a checkout, the copy a wheel carries when installed."""
    return _shipped("stacks")


def presets_dir() -> Path:
    """The built-in presets: `presets/` in a checkout, the copy a wheel carries when installed."""
    return _shipped("presets")


def _shipped(name: str) -> Path:
    # A built wheel carries its copy under backend/bundled/ (see setup.py); only a checkout has the top-level folder.
    candidates = (PACKAGE_ROOT / "bundled" / name, PACKAGE_ROOT.parent / name)
    for path in candidates:
        if path.is_dir():
            return path
    looked = ", ".join(map(str, candidates))
    raise FileNotFoundError(f"skydeck's {name} are missing (looked in {looked}); reinstall skydeck")
