"""`skydeck doctor`: check that a profile can work, and say what to fix when it cannot."""

from __future__ import annotations

import stat
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.context import Context


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(ctx: Context) -> list[Check]:
    from backend.core.errors import SkydeckError
    from backend.stacks.service import outcome

    p = ctx.profile
    checks = [Check("profile", True, f"{p.name} ({p.kind}, {p.region}, stacks {p.stack_prefix}-*)")]
    if p.is_local:
        from backend.localcloud import control

        status = control.status(ctx.home)
        if not (status.running and status.healthy):
            checks.append(
                Check(
                    "local cloud", False, "not running" if not status.running else "not answering", "skydeck local up"
                )
            )
            return checks
        checks.append(Check("local cloud", True, f"{status.state['endpoint']} (pid {status.state['pid']})"))
        token = ctx.home.local_token_file
        mode = stat.S_IMODE(token.stat().st_mode) if token.exists() else None
        checks.append(
            Check(
                "api token",
                mode == 0o600,
                f"{token} mode {oct(mode) if mode is not None else 'missing'}",
                f"chmod 600 {token}" if mode is not None else "skydeck local down && skydeck local up",
            )
        )
    else:
        try:
            ident = ctx.clients.client("sts").get_caller_identity()
            checks.append(Check("credentials", True, f"account {ident['Account']} as {ident['Arn']}"))
        except Exception as exc:  # noqa: BLE001 - every failure here is something to report
            checks.append(
                Check(
                    "credentials",
                    False,
                    str(exc),
                    f"set aws_profile for {p.name} in {ctx.home.profiles_file}, or run: aws configure",
                )
            )
            return checks
    try:
        infos = ctx.stacks.list()
    except (SkydeckError, Exception) as exc:  # noqa: BLE001
        checks.append(
            Check(
                "cloudformation",
                False,
                f"cannot reach CloudFormation in {p.region}: {exc}",
                "check the region and network",
            )
        )
        return checks
    checks.append(Check("cloudformation", True, f"reachable in {p.region}"))
    for info in infos:
        required = info.short in ("infra", "api")
        if not info.deployed:
            checks.append(
                Check(
                    f"stack {info.short}",
                    not required,
                    "not deployed" + ("" if required else " (optional)"),
                    f"skydeck stacks deploy {info.short}",
                )
            )
        elif outcome(info.status) == "failed":
            checks.append(
                Check(
                    f"stack {info.short}",
                    False,
                    f"{info.status} {info.reason}",
                    f"skydeck stacks events {info.short}; then delete and redeploy it",
                )
            )
        else:
            checks.append(Check(f"stack {info.short}", True, info.status))
    return checks
