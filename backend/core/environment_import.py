"""The original's `etc/environment.sh` (heeki/plenoxels) read into a skydeck profile.

The file is read as data, never run: `KEY=VALUE` lines (an optional `export`, quotes, and `${KEY}`
of keys set earlier in the file). What each variable becomes:

    REGION / AWS_REGION        region
    PROFILE                    aws_profile (the AWS CLI profile)
    INFRA_STACK                stack_prefix (plenoxels-infra -> plenoxels)
    P_IMAGE_ID                 fleet ImageId            P_INSTANCE_TYPE   fleet InstanceType
    P_VPC_ID                   fleet VpcId              P_SUBNET_IDS      fleet SubnetIds
    P_SSH_KEY                  fleet KeyName            P_INGRESS_CIDR    fleet SshIngressCidr

The rest has no home, with the reason in `ignored`: S3BUCKET (skydeck packages into its own data
bucket), P_SUBNET_SELECTION (the group spreads over every subnet given), the *_TEMPLATE, *_OUTPUT,
*_PARAMS and O_* lines (skydeck's own templates and outputs), P_NAME.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.errors import ConfigError

FLEET_PARAMS = {
    "P_IMAGE_ID": "ImageId",
    "P_INSTANCE_TYPE": "InstanceType",
    "P_VPC_ID": "VpcId",
    "P_SUBNET_IDS": "SubnetIds",
    "P_SSH_KEY": "KeyName",
    "P_INGRESS_CIDR": "SshIngressCidr",
}
WHY_IGNORED = {
    "S3BUCKET": "skydeck packages code into its own data bucket",
    "P_SUBNET_SELECTION": "the fleet's group spreads over every subnet in P_SUBNET_IDS",
    "P_NAME": "a placeholder in the original",
}
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class ImportedProfile:
    settings: dict[str, Any]
    ignored: dict[str, str] = field(default_factory=dict)  # variable -> why
    placeholders: list[str] = field(default_factory=list)  # variables still holding the template's text


def read_environment(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as the shell would assign them, without running anything."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = _LINE.match(line)
        if not found:
            raise ConfigError(f"{path}:{number}: not a KEY=VALUE line: {line.strip()!r}")
        key, raw = found.groups()
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}: {exc}") from None
        value = " ".join(words)
        values[key] = _REF.sub(lambda m: values.get(m.group(1) or m.group(2), ""), value)
    return values


def profile_from_environment(values: dict[str, str]) -> ImportedProfile:
    settings: dict[str, Any] = {"kind": "aws"}
    result = ImportedProfile(settings)

    def usable(key: str) -> str | None:
        value = values.get(key, "").strip()
        if not value:
            return None
        if value.startswith(("your-", "-your-", "output-")) or value == "placeholder-no-need-to-update":
            result.placeholders.append(key)
            return None
        return value

    region = usable("REGION") or usable("AWS_REGION") or usable("AWS_DEFAULT_REGION")
    if region:
        settings["region"] = region
    aws_profile = usable("PROFILE")
    if aws_profile:
        settings["aws_profile"] = aws_profile.removeprefix("--profile").strip()
    infra = usable("INFRA_STACK")
    if infra:
        settings["stack_prefix"] = infra.removesuffix("-infra").lower()
    fleet = {param: usable(var) for var, param in FLEET_PARAMS.items()}
    fleet = {k: v for k, v in fleet.items() if v}
    if fleet:
        settings["params"] = {"fleet": fleet}
    for key in values:
        if key in FLEET_PARAMS or key in ("REGION", "AWS_REGION", "AWS_DEFAULT_REGION", "PROFILE", "INFRA_STACK"):
            continue
        if key in WHY_IGNORED:
            result.ignored[key] = WHY_IGNORED[key]
        elif key.endswith(("_TEMPLATE", "_OUTPUT", "_PARAMS", "_STACK")) or key.startswith("O_"):
            result.ignored[key] = "skydeck's own templates, stack names and outputs take its place"
        else:
            result.ignored[key] = "not one of the original's settings skydeck knows"
    return result
