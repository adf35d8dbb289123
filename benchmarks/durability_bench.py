"""The local cloud's durability, long form: many random sequences of S3, SQS, DynamoDB and
CloudFormation calls, each checked against a model after clean restarts and kill -9s.

    make bench            (or: .venv/bin/python benchmarks/durability_bench.py [--sequences 20 --length 150])

Target: no difference between the cloud and the model, ever. Prints how much was tried.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.durability import run_sequences  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=12)
    parser.add_argument("--length", type=int, default=150, help="calls per sequence")
    parser.add_argument("--restarts", type=int, default=4, help="restarts per sequence (half of them kill -9)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    args = parser.parse_args()
    seeds = [args.seed + i for i in range(args.sequences)]
    os.environ.setdefault("SKYDECK_JOURNAL_COMPACT_AT", "40")  # compact on most restarts: that is tested too
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="skydeck-durability-") as root:
        outcome = run_sequences(Path(root), seeds, args.length, args.restarts)
    took = time.time() - started
    print(
        f"durability: {outcome.sequences} sequences (seeds {seeds[0]}..{seeds[-1]}), "
        f"{outcome.operations} operations, {outcome.restarts} restarts ({outcome.kills} by kill -9, "
        f"{outcome.compactions} compacting the journal), "
        f"state equal to the model every time, {took:.0f}s"
    )
    for name, count in outcome.by_operation.items():
        print(f"  {name:<24} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
