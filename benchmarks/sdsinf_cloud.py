"""A throwaway local cloud with the sdsinf stack and one generated dataset uploaded, for the SDS-Inf
benchmarks that run the Lambda variants."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def uploaded_cloud(
    name: str, layers: int, inputs: int, seed: int, density: tuple[float, float] | None = None
) -> Iterator[Any]:
    """Yields SdsinfRuns on a fresh local cloud (its home a temporary folder) holding dataset `name`."""
    from backend.context import Context
    from backend.core.paths import Home
    from backend.localcloud import control
    from backend.sdsinf.data import generate
    from backend.sdsinf.runs import SdsinfRuns

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SKYDECK_HOME"] = tmp
        home = Home.from_env()
        control.up(home, workers=0)
        try:
            ctx = Context.create(None, home)
            ctx.stacks.deploy("infra")
            ctx.stacks.deploy("sdsinf")
            runs = SdsinfRuns(ctx)
            generate(Path(tmp) / "gc", 1024, layers, inputs, seed=seed, density=density)
            runs.upload(Path(tmp) / "gc", 1024, layers, name)
            yield runs
        finally:
            control.down(home)
