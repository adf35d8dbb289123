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
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
