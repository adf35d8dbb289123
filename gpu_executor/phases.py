"""Where a job's time goes: seconds per phase, recorded by the engine and the executor.

The phases, in order: `queued` (submitted to claimed), `load` (the scene fetched and read), `train`,
`evaluate` (the test views rendered and scored, the checkpoint written), `render` (the turntable) and
`upload` (the results published). An engine that cannot tell two apart (svox2's opt.py reads its own
scene) records them under the one that holds them; docs/plenoxels.md says which.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

PHASES = ("queued", "load", "train", "evaluate", "render", "upload")


@dataclass
class PhaseClock:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as `name` (added to what that phase already holds: a phase may come back)."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}; one of {', '.join(PHASES)}")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + max(0.0, seconds)

    def as_dict(self) -> dict[str, float]:
        """The phases reached, in PHASES order, to the hundredth of a second (the job record's phases_s)."""
        return {name: round(self.seconds[name], 2) for name in PHASES if name in self.seconds}
