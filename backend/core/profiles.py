"""Profiles: where skydeck points. `local` is built in and the default; AWS profiles live in YAML.

The seed's `environment.sh` becomes a profile:

    profiles:
      prod:
        kind: aws
        region: us-west-2
        aws_profile: research        # optional named AWS CLI profile
        stack_prefix: skydeck        # stacks are <prefix>-infra, <prefix>-api, ...
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.errors import ConfigError, NotFoundError
from backend.core.paths import Home

LOCAL = "local"
LOCAL_REGION = "us-east-1"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,20}\Z")


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str = "local"  # "local" | "aws"
    region: str = LOCAL_REGION
    aws_profile: str | None = None
    stack_prefix: str = "skydeck"
    params: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def stack_name(self, short: str) -> str:
        return f"{self.stack_prefix}-{short}"


def parse_profile(name: str, raw: Any) -> Profile:
    if not isinstance(raw, dict):
        raise ConfigError(f"profile {name!r}: must be a mapping of settings")
    allowed = {"kind", "region", "aws_profile", "stack_prefix", "params"}
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(
            f"profile {name!r}: unknown setting {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
    kind = raw.get("kind", "aws")
    if kind not in ("aws", "local"):
        raise ConfigError(f"profile {name!r}: kind must be 'aws' or 'local', not {kind!r}")
    # an AWS profile without a region takes the environment's, as the AWS CLI does
    env_region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    region = raw.get("region", LOCAL_REGION if kind == "local" else env_region)
    if not isinstance(region, str) or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d\Z", region):
        raise ConfigError(f"profile {name!r}: region must be an AWS region such as us-west-2, not {region!r}")
    prefix = raw.get("stack_prefix", "skydeck")
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ConfigError(f"profile {name!r}: stack_prefix must be lower-case letters, digits and '-' (max 21)")
    params = raw.get("params", {}) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"profile {name!r}: params must map a stack name to its parameters")
    return Profile(
        name=name,
        kind=kind,
        region=region,
        aws_profile=raw.get("aws_profile"),
        stack_prefix=prefix,
        params={str(k): {str(a): str(b) for a, b in (v or {}).items()} for k, v in params.items()},
    )


def load_profiles(home: Home) -> dict[str, Profile]:
    profiles = {LOCAL: Profile(name=LOCAL)}
    path = home.profiles_file
    if path.exists():
        import yaml  # a sixth of `jobs list`'s own imports, and only a profiles file needs it

        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        raw = doc.get("profiles", {}) if isinstance(doc, dict) else None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a top-level 'profiles:' mapping")
        for name, body in raw.items():
            profiles[str(name)] = parse_profile(str(name), body)
    return profiles


def get_profile(home: Home, name: str | None) -> Profile:
    profiles = load_profiles(home)
    chosen = name or LOCAL
    if chosen not in profiles:
        raise NotFoundError(
            f"no profile named {chosen!r}; known: {', '.join(sorted(profiles))}. Add it to {home.profiles_file}"
        )
    profile = profiles[chosen]
    override = os.environ.get("SKYDECK_REGION")  # `skydeck --region R ...`
    if override and override != profile.region:
        if profile.is_local:
            raise ConfigError(f"--region {override}: the local cloud runs in {LOCAL_REGION}; use an AWS profile")
        if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d\Z", override):
            raise ConfigError(f"--region {override!r}: expected an AWS region such as us-west-2")
        profile = dataclasses.replace(profile, region=override)
    return profile


def save_profile(home: Home, name: str, settings: dict[str, Any], confirm_replace: Callable[[str], None]) -> Path:
    """Write one AWS profile into profiles.yaml, checked as loading it will check it; a profile of that
    name is replaced only once `confirm_replace(question)` returns (it raises to refuse). Answers the
    file's path. The file is replaced whole, so a crash never leaves half of it."""
    if name == LOCAL or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"--name {name!r}: use letters, digits, '-' and '_' (and not {LOCAL!r})")
    parse_profile(name, settings)  # the same checks as loading it later: refuse now, not then
    path = home.profiles_file
    import yaml

    doc = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    if not isinstance(doc, dict) or not isinstance(doc.setdefault("profiles", {}), dict):
        raise ConfigError(f"{path}: expected a top-level 'profiles:' mapping; fix it first")
    if name in doc["profiles"]:
        confirm_replace(f"replace the profile {name!r} in {path}?")
    doc["profiles"][name] = settings
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)
    return path
