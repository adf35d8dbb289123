"""The README's command blocks, as a bash script that stops at the first command that fails.

The README's headless tour and its SDS-Inf blocks are run in order, as written, with three
differences, each named here:
- JOB_ID and RUN_ID stand for the ids the commands before them printed: the script reads them with
  `--json` right after the command that made them;
- the tour's training job is shortened (`n_iters`), so that the test waits seconds, not minutes;
- the last `skydeck local up` is followed by the script's own `skydeck local down` (in the test's
  clean-up), so that nothing is left running.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
SHORT_TRAINING = "--set n_iters=120 --set upsamp_every=60"
_FIRST = (  # the newest item's field, from a --json listing (a page {items: [...]} or a list)
    "python3 -c 'import json,sys; d=json.load(sys.stdin); "
    'print((d[\"items\"] if \"items\" in d else d)[0][\"{}\"])\''
)
_JOB_ID = "JOB_ID=$(skydeck jobs list --json | " + _FIRST.format("job_id") + ")"
_RUN_ID = "RUN_ID=$(skydeck sdsinf runs --json | " + _FIRST.format("run_id") + ")"


@dataclass(frozen=True)
class Command:
    line: int  # in the README
    text: str


def bash_blocks(readme: Path = README) -> list[list[Command]]:
    """Each fenced ```bash block: its commands, with their README line numbers (comments dropped)."""
    blocks: list[list[Command]] = []
    current: list[Command] | None = None
    for number, line in enumerate(readme.read_text().splitlines(), start=1):
        if current is None:
            if line.strip() == "```bash":
                current = []
            continue
        if line.strip() == "```":
            blocks.append(current)
            current = None
            continue
        command = _without_comment(line).strip()
        if command:
            current.append(Command(number, command))
    return blocks


def _without_comment(line: str) -> str:
    """The line up to a `#` that starts a comment (outside quotes, after a space or at the start)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def tour(readme: Path = README) -> list[Command]:
    """The headless tour (the block that starts the local cloud) and the SDS-Inf section's blocks."""
    blocks = bash_blocks(readme)
    start = next(i for i, b in enumerate(blocks) if any(c.text == "skydeck local up" for c in b))
    sdsinf = [b for b in blocks if any(c.text.startswith("skydeck sdsinf") for c in b)]
    return [c for b in [blocks[start], *sdsinf] for c in b]


def script(commands: list[Command]) -> str:
    """A bash script that runs `commands` in order and, on the first non-zero exit, names its line."""
    out = ["set -o pipefail"]
    for c in commands:
        text = c.text
        if text.startswith("make "):
            continue  # the set-up the test itself stands on
        if "jobs submit" in text:
            text += f" {SHORT_TRAINING}"
        text = re.sub(r"\bJOB_ID\b", '"$JOB_ID"', re.sub(r"\bRUN_ID\b", '"$RUN_ID"', text))
        out.append(f"echo {shlex.quote(f'>>> README line {c.line}: {c.text}')}")
        out.append(f"{text} || {{ echo {shlex.quote(f'README line {c.line} failed: {c.text}')} >&2; exit 1; }}")
        if "jobs submit" in c.text:
            out.append(_JOB_ID)
        if c.text.startswith("skydeck sdsinf run ") and "--payload" not in c.text:
            out.append(_RUN_ID)
        if c.text.startswith("export SKYDECK_HOME="):
            out.append('echo "$SKYDECK_HOME" > tour-home')  # for the test's clean-up
    return "\n".join(out) + "\n"
