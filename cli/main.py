"""`skydeck`: the entry point. Turns errors into exit codes; imports the commands only when one runs.

Exit codes: 0 success; 1 a failure the command reports (a refused call, a failed job); 2 bad usage
or configuration; 3 not found; 4 the cloud could not be reached; 70 an internal error (a bug: run
again with --debug); 130 interrupted.

Only the standard library is imported at the top: `skydeck --version` answers before typer, rich or
boto3 load, and an AWS error is recognised through the botocore module that raised it, so a command
that never reaches AWS never imports botocore.
"""

from __future__ import annotations

import os
import sys


def version() -> str:
    """skydeck's version: the door loads its names on first use, so this reads the version alone."""
    from backend.interface import __version__

    return __version__


def _profile_is_local() -> bool:
    from backend.interface import Backend, SkydeckError

    try:
        return Backend.open(os.environ.get("SKYDECK_PROFILE")).profile.is_local
    except SkydeckError:
        return False


def _botocore_error(exc: BaseException) -> int | None:
    """The exit code for an error botocore raised (printing what it means), or None for any other."""
    errors = sys.modules.get("botocore.exceptions")
    transfer = sys.modules.get("boto3.exceptions")
    if transfer is not None and isinstance(exc, transfer.Boto3Error):
        # an upload or download that failed (S3UploadFailedError): the call's error is in its words
        from backend.interface import markup_safe as escape
        from cli.common import err

        err.print(f"[red]error:[/] {escape(str(exc), None, True)}", markup=True)
        return 1
    if errors is None or not isinstance(exc, errors.BotoCoreError | errors.ClientError):
        return None
    from backend.interface import markup_safe as escape
    from cli.common import err

    if isinstance(exc, errors.NoCredentialsError):
        err.print(
            "[red]error:[/] no AWS credentials for this profile; set aws_profile in profiles.yaml or run aws configure",
            markup=True,
        )
        return 2
    if isinstance(exc, errors.ClientError):
        err.print(f"[red]error:[/] AWS refused the call: {escape(str(exc), None, True)}", markup=True)
        return 1
    # a connection that failed or broke off: the endpoint is down (or went down partway), exit 4
    unreachable = isinstance(
        exc, errors.EndpointConnectionError | errors.ConnectionClosedError | errors.ConnectTimeoutError
    )
    err.print(f"[red]error:[/] could not reach AWS: {escape(str(exc), None, True)}", markup=True)
    if unreachable and _profile_is_local():
        err.print("the local cloud stopped answering; see: skydeck local status (and start it: skydeck local up)")
    return 4 if unreachable else 1


def _named(argv: list[str]) -> str | None:
    """The group or command a command line names past the root's own options, or None where the root must
    answer itself (no command, --help, completion, an unknown name: it lists them all)."""
    from cli.app import COMMANDS, GROUPS

    if any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ):
        return None  # shell completion walks the whole tree
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--profile", "-p", "--region"):
            i += 2
        elif arg == "--debug" or arg.startswith(("--profile=", "--region=")):
            i += 1
        else:
            return arg if arg in GROUPS or arg in COMMANDS else None
    return None


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        print(f"skydeck {version()}")
        return
    try:
        from cli.app import make_app

        # click itself exits on usage errors (2), --help and --version (0) and Ctrl-C (1)
        make_app(_named(sys.argv[1:]))(prog_name="skydeck")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from backend.interface import SkydeckError
        from backend.interface import markup_safe as escape
        from cli.common import err

        if isinstance(exc, SkydeckError):
            err.print(f"[red]error:[/] {escape(str(exc), None, True)}", markup=True)
            sys.exit(exc.exit_code)
        code = _botocore_error(exc)
        if code is not None:
            sys.exit(code)
        if isinstance(exc, OSError):
            from backend.interface import full_disk, is_full

            where = getattr(exc, "filename", None)
            said = full_disk(where) if is_full(exc) and where else str(exc)
            err.print(f"[red]error:[/] {escape(said, None, True)}", markup=True)
            sys.exit(1)
        if os.environ.get("SKYDECK_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc), None, True)} "
            "(run again with --debug for the traceback, and report it)",
            markup=True,
        )
        sys.exit(70)


if __name__ == "__main__":
    main()
