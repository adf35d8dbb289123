"""docs/cli.md, generated from the commands themselves (`make docs`; a test fails when it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

PIPE = " \\| "  # a | inside a Markdown table cell
HEADER = """# Command reference

Generated from `skydeck --help` by `make docs`; do not edit by hand. Every command also answers
`-h`. Exit codes: 0 ok, 1 failed, 2 bad usage or input, 3 not found, 4 local cloud not running,
70 internal error.
"""


def _option(param: Any, ctx: Any) -> str:
    record = param.get_help_record(ctx)  # what --help prints: the names (with choices), the help and default
    if record is None:
        return ""
    names, text = record
    return f"| `{names.replace('|', PIPE.strip())}` | {' '.join(text.split()).replace('|', PIPE)} |"


def _command(path: str, command: Any, out: list[str]) -> None:
    subcommands = getattr(command, "commands", None)
    if subcommands:
        if path == "skydeck":
            _options("skydeck COMMAND", command, out, "Options that come before any command.")
        for name in sorted(subcommands):
            _command(f"{path} {name}", subcommands[name], out)
        return
    args = " ".join(p.name.upper() for p in command.params if p.param_type_name == "argument")
    _options(f"{path}{' ' + args if args else ''}", command, out, command.help or "")


def _options(title: str, command: Any, out: list[str], text: str) -> None:
    ctx = command.make_context(title.split()[-1], [], resilient_parsing=True)
    out.append(f"## `{title}`\n")
    out.append(" ".join(text.split()) + "\n")
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    if options:
        out.append("| option | meaning |\n| --- | --- |")
        out.extend(_option(p, ctx) for p in options)
        out.append("")


def render() -> str:
    from cli.app import make_app

    root = typer.main.get_command(make_app())
    out = [HEADER]
    _command("skydeck", root, out)
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/cli.md")
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
