"""A Graph Challenge directory parsed on every core.

Parsing the layer files is most of a cold `sdsinf infer` (about 9 ms a layer file; 120 layers take
longer than the inference itself). The layers are independent, so contiguous runs of them are parsed
in forked processes while this one parses the inputs and the truth, and the layers come back in order.
One core, or a platform without fork, parses them here as before.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from lambda_src.sdsinf import graphchallenge as gc
from lambda_src.sdsinf.model import Network, bias_for

MIN_LAYERS_PER_PROCESS = 8  # below this a fork costs more than the parse it saves


def load_all(
    root: Path, neurons: int, depth: int, processes: int | None = None
) -> tuple[Network, sp.csr_matrix, np.ndarray | None]:
    """(network, inputs, truth or None); a bad file raises gc.DataError naming it, as the serial reader does."""
    gc.check_depth(root, neurons, depth)
    n = min(processes if processes is not None else (os.cpu_count() or 1), depth // MIN_LAYERS_PER_PROCESS)
    if n <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        net = Network(neurons, gc.load_layers(root, neurons, 1, depth), bias_for(neurons))
        return net, gc.load_inputs(root, neurons), gc.load_truth(root, neurons, depth)
    bounds = np.linspace(0, depth, n + 1).astype(np.int64)
    fork = multiprocessing.get_context("fork")
    jobs = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        mine, theirs = fork.Pipe(duplex=False)
        proc = fork.Process(target=_parse_layers, args=(root, neurons, int(lo) + 1, int(hi), theirs), daemon=True)
        proc.start()
        theirs.close()
        jobs.append((proc, mine))
    try:
        y, truth = gc.load_inputs(root, neurons), gc.load_truth(root, neurons, depth)
        layers: list[sp.csr_matrix] = []
        for proc, pipe in jobs:
            layers.extend(_received(proc, pipe))
    finally:
        for proc, pipe in jobs:
            pipe.close()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    return Network(neurons, layers, bias_for(neurons)), y, truth


def _received(proc: Any, pipe: Any) -> list[sp.csr_matrix]:
    try:
        kind, value = pipe.recv()
    except EOFError:
        raise RuntimeError(f"a parsing process died (exit code {proc.exitcode})") from None
    if kind == "error":
        raise gc.DataError(value)
    return list(value)


def _parse_layers(root: Path, neurons: int, first: int, last: int, pipe: Any) -> None:
    try:
        pipe.send(("layers", gc.load_layers(root, neurons, first, last)))
    except gc.DataError as exc:
        pipe.send(("error", str(exc)))
    finally:
        pipe.close()
