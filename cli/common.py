"""What every command group shares: the two consoles, the common options, JSON output, confirmation."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from backend.interface import Backend


def _safe_console(**options: Any) -> Console:
    """A rich console for text that may hold the cloud's bytes: markup is off unless a print asks for it
    (and then the data in it is passed through `markup_safe`), and every control character of a string it
    renders - a print's text or a table's cell - is shown as its escape (backend.core.text), so no record,
    log or name can drive the terminal."""
    from rich.console import Console
    from rich.text import Text

    from backend.interface import shown

    class SafeConsole(Console):
        def render_str(self, text: str, **kwargs: Any) -> Text:
            return super().render_str(shown(text, limit=None, keep_newlines=True), **kwargs)

    return SafeConsole(**options)


class LazyConsole:
    """A safe console made on first use. rich is a tenth of a short command's time to import, and a command
    piped to a script (a table as tab-separated lines, JSON) never draws with it."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = _safe_console(**self._options)
        return self._console

    @property
    def is_terminal(self) -> bool:
        if self._console is None and not self._may_be_terminal():
            return False
        return self.console.is_terminal

    @property
    def _stream(self) -> Any:
        return sys.stderr if self._options.get("stderr") else sys.stdout

    def _may_be_terminal(self) -> bool:
        """False only where rich's own answer is sure to be False: a stream that is no terminal, and no
        TTY_COMPATIBLE=1 or FORCE_COLOR saying otherwise."""
        try:
            isatty = self._stream.isatty()
        except (AttributeError, ValueError):
            isatty = False
        return isatty or os.environ.get("TTY_COMPATIBLE") == "1" or bool(os.environ.get("FORCE_COLOR"))

    def print(self, *objects: Any, **options: Any) -> None:
        """rich's print; a plain string bound for a pipe is written as rich would write it there (its text
        with control characters shown as escapes, and a newline) without importing rich for it."""
        plain = not options and len(objects) == 1 and isinstance(objects[0], str)
        if plain and self._console is None and not self._may_be_terminal():
            from backend.interface import shown

            self._stream.write(shown(objects[0], limit=None, keep_newlines=True) + "\n")
            return
        self.console.print(*objects, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = LazyConsole(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = LazyConsole(stderr=True, highlight=False, markup=False, emoji=False)

ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-p", envvar="SKYDECK_PROFILE", help="Profile to use (default: local).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A table on a terminal; tab-separated lines, never cut, when piped. Every cell is data: its control
    characters (a tab or a line break included) are shown as escapes, so a row stays one line."""
    from backend.interface import shown

    rows = [[shown(cell, limit=None) for cell in row] for row in rows]
    if out.is_terminal:
        from rich.table import Table

        table = Table(box=None)
        widest = max((len(r[0]) for r in rows), default=0)
        for i, header in enumerate(headers):
            # the first column (an id, a name) is never cut, in two or short: scripts and `show` need it whole
            table.add_column(header, no_wrap=i == 0, min_width=widest if i == 0 else None)
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    sys.stdout.write("\t".join(headers) + "\n")
    for row in rows:
        sys.stdout.write("\t".join(row) + "\n")


@contextmanager
def ctrl_c_stops() -> Iterator[threading.Event]:
    """For a command that follows something until Ctrl-C: the first Ctrl-C sets the event, which the
    command checks between polls and then exits 130 with its word; a KeyboardInterrupt raised at any
    byte code (inside a client call that holds a lock, say) could leave the process unable to exit.
    A second Ctrl-C interrupts at once, as usual."""
    stop = threading.Event()

    def first(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def backend(profile: str | None) -> Backend:
    """The typed backend for the profile (default: $SKYDECK_PROFILE, else local): every command's one door."""
    from backend.interface import Backend

    return Backend.open(profile)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        from backend.interface import ConfigError

        raise ConfigError(f"{question} - refusing without a terminal to ask on; pass --yes to confirm")
    try:
        confirmed = typer.confirm(question, default=False)
    except typer.Abort as exc:
        # click turns Ctrl-C at a prompt into "Aborted!" and exit 1; here it is what Ctrl-C is
        # everywhere else, 130 with a word (end of input stays a plain no)
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        err.print("\nnot confirmed: nothing was changed")
        raise typer.Exit(130 if interrupted else 1) from None
    if not confirmed:
        raise typer.Exit(1)
