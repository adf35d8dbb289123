"""SDS-Inf kernel: edges/s of the live-row kernel beside the plain reference loop, in one run.

Edges/s = inputs x total edges / seconds, on a generated 1024-neuron, 120-layer network.

    .venv/bin/python benchmarks/sdsinf_bench.py [--inputs 60000] [--layers 120]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lambda_src.sdsinf.kernel import categories, infer, reference
from lambda_src.sdsinf.model import generate_inputs, radixnet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=60000)
    parser.add_argument("--layers", type=int, default=120)
    parser.add_argument("--neurons", type=int, default=1024)
    parser.add_argument(
        "--cloud", action="store_true", help="also run the Queue and Object variants on a local cloud (minutes)"
    )
    parser.add_argument("--cloud-inputs", type=int, default=1000)
    parser.add_argument("--cloud-layers", type=int, default=120)
    args = parser.parse_args()
    net = radixnet(args.neurons, args.layers, seed=0)
    y = generate_inputs(args.neurons, args.inputs, seed=1)
    work = float(args.inputs) * net.edges
    t = time.perf_counter()
    live = infer(y, net.layers, net.bias)
    fast = time.perf_counter() - t
    t = time.perf_counter()
    ref = reference(y, net.layers, net.bias)
    slow = time.perf_counter() - t
    same = np.array_equal(categories(ref), live.alive() + 1)
    print(
        f"{args.neurons} neurons x {args.layers} layers, {args.inputs} inputs, {net.edges:,} edges; "
        f"{live.alive().size} inputs categorised"
    )
    print(f"{'kernel':<22}{'seconds':>10}{'billion edges/s':>18}")
    print(f"{'live-row kernel':<22}{fast:>10.2f}{work / fast / 1e9:>18.2f}")
    print(f"{'reference loop':<22}{slow:>10.2f}{work / slow / 1e9:>18.2f}")
    print(
        f"ratio {slow / fast:.1f}x; same categories: {same}; target >= 20 billion edges/s: "
        f"{'ok' if work / fast >= 20e9 else 'MISSED'}"
    )
    if args.cloud:
        cloud_split(args.cloud_inputs, args.cloud_layers)
    return 0 if same else 1


def cloud_split(inputs: int, layers: int, worker_counts: tuple[int, ...] = (1, 2, 4, 8)) -> None:
    """Wall time and the communication / computation split per variant and worker count, on a
    throwaway local cloud (everything on this machine: the split shows the protocol's cost)."""
    import os
    import tempfile
    from pathlib import Path

    from backend.core.context import Context
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
            generate(Path(tmp) / "gc", 1024, layers, inputs, seed=3)
            runs.upload(Path(tmp) / "gc", 1024, layers, "bench")
            print(f"\nlocal cloud, 1024 neurons x {layers} layers, {inputs} inputs (2 cores: all workers share them)")
            header = f"{'variant':<8}{'partition':>10}{'workers':>8}{'wall s':>9}{'comm s':>9}{'comp s':>9}"
            print(header + f"{'msgs':>7}{'MB sent':>9}  truth")
            combos = [("serial", "row")] + [(v, p) for v in ("queue", "object") for p in ("row", "component")]
            for variant, partition in combos:
                for workers in worker_counts:
                    if variant == "serial" and workers > 1:
                        continue  # Serial is one worker
                    if partition == "component" and workers == 1:
                        continue  # one worker sends nothing either way
                    started = runs.start(
                        "bench", variant, workers=workers, config=f"bench_{variant}_{workers}w", partition=partition
                    )
                    summary = runs.follow(started["run_id"], timeout_s=900)
                    metrics = runs.show(started["run_id"])["metrics"]
                    print(
                        f"{variant:<8}{partition:>10}{workers:>8}{float(summary.runtime_s):>9.1f}"
                        f"{float(metrics['METRIC_ELAPSED_TIME_COMMUNICATION']):>9.2f}"
                        f"{float(metrics['METRIC_ELAPSED_TIME_COMPUTATION']):>9.2f}"
                        f"{int(metrics['METRIC_NUM_MESSAGES_SENT']):>7}"
                        f"{int(metrics['METRIC_SIZE_MESSAGES_SENT']) / 1e6:>9.2f}  {summary.matches_truth}",
                        flush=True,
                    )
        finally:
            control.down(home)


if __name__ == "__main__":
    sys.exit(main())
