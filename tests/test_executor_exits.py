"""How an executor ended, as its supervisors record it: the local cloud's pool and a host's systemd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gpu_executor import exits
from gpu_executor.exits import Exit


def test_a_negative_status_is_the_signal_and_a_kill_names_memory() -> None:
    assert Exit.from_returncode(7, -9) == Exit(7, signal="KILL")
    assert Exit.from_returncode(7, 3) == Exit(7, code=3)
    assert "out-of-memory killer" in Exit(7, signal="KILL").reason()
    assert Exit(7, signal="TERM").reason() == "was ended by SIGTERM"
    assert Exit(7, code=3).reason() == "exited with status 3"


def test_systemd_exec_stop_post_records_an_oom_kill_for_the_pid_the_executor_wrote(tmp_path: Path) -> None:
    exits.note_running(tmp_path, 4242)
    env = {
        **os.environ,
        exits.EXITS_ENV: str(tmp_path),
        "SERVICE_RESULT": "oom-kill",
        "EXIT_CODE": "killed",
        "EXIT_STATUS": "KILL",
    }
    subprocess.run([sys.executable, "-m", "gpu_executor.exits", "systemd"], env=env, check=True)
    got = exits.read(tmp_path, 4242)
    assert got is not None and got.oom and got.reason().startswith("was killed by the kernel's out-of-memory killer")
    env.update(SERVICE_RESULT="exit-code", EXIT_CODE="exited", EXIT_STATUS="1")
    subprocess.run([sys.executable, "-m", "gpu_executor.exits", "systemd"], env=env, check=True)
    assert exits.read(tmp_path, 4242) == Exit(4242, code=1)


def test_a_record_planted_in_the_directory_is_only_a_hint_never_markup_or_a_crash(tmp_path: Path) -> None:
    (tmp_path / "5.json").write_text('{"pid": 5, "signal": "\\u001b]0;pwned\\u0007", "code": "x"}')
    assert exits.read(tmp_path, 5) == Exit(5)
    (tmp_path / "6.json").write_text("not json")
    assert exits.read(tmp_path, 6) is None
    assert exits.read(tmp_path, 8) is None


def test_the_directory_keeps_the_newest_records_only(tmp_path: Path) -> None:
    for pid in range(exits.KEEP + 10):
        exits.record(tmp_path, Exit(pid, code=0))
    assert len(list(tmp_path.glob("*.json"))) == exits.KEEP
