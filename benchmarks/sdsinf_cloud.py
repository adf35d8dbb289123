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
    name: str,
    layers: int,
    inputs: int,
    seed: int,
    density: tuple[float, float] | None = None,
    data: Path | None = None,
    neurons: int = 1024,
) -> Iterator[Any]:
    """Yields SdsinfRuns on a fresh local cloud (its home a temporary folder) holding dataset `name`:
    the Graph Challenge directory `data`, or one generated from `inputs`, `seed` and `density`."""
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
            if data is None:
                data = Path(tmp) / "gc"
                generate(data, neurons, layers, inputs, seed=seed, density=density)
            runs.upload(data, neurons, layers, name)
            yield runs
        finally:
            control.down(home)
