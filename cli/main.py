"""`skydeck`: the root command. Assembles the command groups and turns errors into exit codes.

Exit codes: 0 success; 1 a failure the command reports (a refused call, a failed job); 2 bad usage
or configuration; 3 not found; 70 an internal error (a bug: run again with --debug); 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from rich.markup import escape

from backend.core.errors import SkydeckError
from cli import api, batch, console, data, doctor, executor, fleet, jobs, local, presets, profiles, sdsinf, stacks
from cli.common import err

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="skydeck: run Plenoxels training and SDS-Inf inference on AWS or the embedded local cloud.",
)
for group, name in (
    (local, "local"), (stacks, "stacks"), (jobs, "jobs"), (data, "data"), (batch, "batch"), (presets, "presets"),
    (profiles, "profiles"), (api, "api"), (executor, "executor"), (sdsinf, "sdsinf"), (fleet, "fleet"),
):  # fmt: skip
    app.add_typer(group.app, name=name)
app.command("doctor")(doctor.doctor)
app.command("console")(console.console)


def skydeck_version() -> str:
    try:
        return version("skydeck")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        print(f"skydeck {skydeck_version()}")
        raise typer.Exit(0)


@app.callback()
def root(
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", envvar="SKYDECK_PROFILE", help="Profile for every command (default: local)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="AWS region for an AWS profile (overrides the profile's; default $AWS_REGION)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal error.")] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    # Commands read the profile from SKYDECK_PROFILE unless given their own --profile.
    if profile:
        os.environ["SKYDECK_PROFILE"] = profile
    if region:
        os.environ["SKYDECK_REGION"] = region
    if debug:
        os.environ["SKYDECK_DEBUG"] = "1"


def _profile_is_local() -> bool:
    try:
        from backend.core.paths import Home
        from backend.core.profiles import get_profile

        return get_profile(Home.from_env(), os.environ.get("SKYDECK_PROFILE")).is_local
    except SkydeckError:
        return False


def main() -> None:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    try:
        app(prog_name="skydeck")  # click itself exits on usage errors (2), --help and --version (0) and Ctrl-C (1)
    except SkydeckError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(exc.exit_code)
    except NoCredentialsError:
        err.print(
            "[red]error:[/] no AWS credentials for this profile; set aws_profile in profiles.yaml or run aws configure"
        )
        sys.exit(2)
    except ClientError as exc:
        err.print(f"[red]error:[/] AWS refused the call: {escape(str(exc))}")
        sys.exit(1)
    except BotoCoreError as exc:
        # a connection that failed or broke off: the endpoint is down (or went down partway), exit 4
        unreachable = isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError))
        err.print(f"[red]error:[/] could not reach AWS: {escape(str(exc))}")
        if unreachable and _profile_is_local():
            err.print("the local cloud stopped answering; see: skydeck local status (and start it: skydeck local up)")
        sys.exit(4 if unreachable else 1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("SKYDECK_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
            "(run again with --debug for the traceback, and report it)"
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
