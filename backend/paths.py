"""Where skydeck keeps its state. Everything lives under SKYDECK_HOME (default ~/.skydeck)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
            from backend.errors import ConfigError

            raise ConfigError(f"SKYDECK_HOME={self.root} is a file; point it at a directory")
        for d in (self.root, self.local_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        return self


def stacks_dir() -> Path:
    """Templates ship inside the package when installed, and sit at the project root in a checkout."""
    for candidate in (PROJECT_ROOT / "stacks", Path(__file__).resolve().parent / "_data" / "stacks"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("stack templates not found; reinstall skydeck")


def presets_dir() -> Path:
    for candidate in (PROJECT_ROOT / "presets", Path(__file__).resolve().parent / "_data" / "presets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("built-in presets not found; reinstall skydeck")
