"""How an executor ended, written down by whatever supervised it and read by the next executor.

An executor that the kernel's out-of-memory killer takes cannot say so itself: it gets SIGKILL. Its
supervisor sees the signal (the local cloud's executor pool from the exit status; a fleet host's
systemd from `$SERVICE_RESULT`/`$EXIT_STATUS` in `ExecStopPost=`) and records it in a directory
named by `SKYDECK_EXECUTOR_EXITS`. When the next executor on that host takes back the job the dead
one held, the job's note and error say what ended it, not only that it ended.

`python -m gpu_executor.exits systemd` is the `ExecStopPost=` command; the executor writes its pid
(`running.pid`) into the same directory at start so that systemd's record names the right process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

EXITS_ENV = "SKYDECK_EXECUTOR_EXITS"
PID_FILE = "running.pid"
KEEP = 64  # records kept per host: enough for any job's attempts, never a growing directory

_MEMORY_HINT = "the job may need more memory than the host has: lower reso or batch_size, or use a larger instance"


@dataclass(frozen=True)
class Exit:
    pid: int
    code: int | None = None  # the exit status, when it exited
    signal: str | None = None  # the signal's name (KILL, TERM, ...), when one ended it
    oom: bool = False  # the supervisor knows the out-of-memory killer did it

    @classmethod
    def from_returncode(cls, pid: int, returncode: int) -> Exit:
        """As `subprocess` reports it: a negative status is the signal that ended the process."""
        if returncode < 0:
            return cls(pid, signal=_signal_name(-returncode))
        return cls(pid, code=returncode)

    def reason(self) -> str:
        """The words after "executor X" in a job's note."""
        if self.oom:
            return f"was killed by the kernel's out-of-memory killer; {_MEMORY_HINT}"
        if self.signal == "KILL":
            return f"was killed by SIGKILL, most often the kernel's out-of-memory killer; {_MEMORY_HINT}"
        if self.signal:
            return f"was ended by SIG{self.signal}"
        return f"exited with status {self.code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


def exits_dir() -> Path | None:
    value = os.environ.get(EXITS_ENV)
    return Path(value) if value else None


def record(directory: Path, ended: Exit) -> None:
    """Write `ended` down (atomically) and keep only the newest `KEEP` records."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{ended.pid}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": ended.pid, "code": ended.code, "signal": ended.signal, "oom": ended.oom}))
    os.replace(tmp, path)
    records = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in records[KEEP:]:
        old.unlink(missing_ok=True)


def read(directory: Path, pid: int) -> Exit | None:
    """The record of `pid`, or None when there is none or it cannot be read (it is only a hint)."""
    try:
        raw = json.loads((directory / f"{pid}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("pid") != pid:
        return None
    code, sig = raw.get("code"), raw.get("signal")
    return Exit(
        pid,
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        signal=sig if isinstance(sig, str) and sig.isalnum() and len(sig) <= 16 else None,
        oom=raw.get("oom") is True,
    )


def note_running(directory: Path | None, pid: int) -> None:
    """At an executor's start: say which process systemd's `ExecStopPost=` will be reporting on."""
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PID_FILE).write_text(str(pid))


def from_systemd(env: dict[str, str], pid: int) -> Exit:
    """systemd's words for how the main process ended (systemd.exec(5), "Environment variables
    set or propagated by the service manager"): `SERVICE_RESULT` is `oom-kill` when the cgroup's OOM
    killer acted; `EXIT_CODE` is exited/killed/dumped and `EXIT_STATUS` the status or signal name."""
    if env.get("SERVICE_RESULT") == "oom-kill":
        return Exit(pid, signal="KILL", oom=True)
    status = env.get("EXIT_STATUS", "")
    if env.get("EXIT_CODE") in ("killed", "dumped"):
        return Exit(pid, signal=status.removeprefix("SIG") or "KILL")
    return Exit(pid, code=int(status) if status.isdigit() else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_executor.exits", description=__doc__)
    parser.add_argument("source", choices=["systemd"], help="who is reporting the exit")
    parser.parse_args(argv)
    directory = exits_dir()
    if directory is None:
        print(f"error: set {EXITS_ENV} to the directory the executor writes {PID_FILE} in", file=sys.stderr)
        return 2
    try:
        pid = int((directory / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        print(f"no executor pid in {directory / PID_FILE}: nothing to record", file=sys.stderr)
        return 0  # it never started: there is no job it could have held
    record(directory, from_systemd(dict(os.environ), pid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
