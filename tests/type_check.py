"""`make lint`'s type check: mypy over the shipped packages (its settings are pyproject.toml's), and a
count of the `# type: ignore` comments left, each of which must name its error code and say why.

    python -m tests.type_check
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backend", "cli", "tui", "lambda_src", "gpu_executor")
# `# type: ignore[code]  # why`: the code is what mypy may not say here, the words what makes it right
_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def unexplained_ignores(root: Path = ROOT) -> tuple[int, list[str]]:
    """(how many ignores the packages hold, 'path:line' of each without a code or a reason)."""
    total = 0
    bad: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                found = _IGNORE.search(line)
                if found is None:
                    continue
                total += 1
                if not found["codes"] or not re.match(r"\s*#\s*\S", found["rest"]):
                    bad.append(f"{path.relative_to(root)}:{number}")
    return total, bad


def main() -> int:
    checked = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, text=True, capture_output=True)
    sys.stdout.write(checked.stdout)
    sys.stderr.write(checked.stderr)
    total, bad = unexplained_ignores()
    print(f"type: ignore comments: {total}, {len(bad)} of them without an error code and a reason")
    for where in bad:
        print(f"{where}: a type: ignore must name its error code and say why: # type: ignore[code]  # why")
    return 1 if checked.returncode or bad else 0


if __name__ == "__main__":
    sys.exit(main())
