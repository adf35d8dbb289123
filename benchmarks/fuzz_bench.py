"""The job schema fuzzed, long form: every body is a job or a refusal naming a field, never a crash.

make bench            (or: .venv/bin/python benchmarks/fuzz_bench.py [--cases 10000])
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.fuzz_jobs import bodies, check_body  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    args = parser.parse_args()
    seen = {"jobs": 0, "refusals": 0}

    @settings(max_examples=args.cases, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(bodies)
    def run(body: bytes) -> None:
        from lambda_src.jobs.schema import JobValidationError, parse_body

        check_body(body)
        try:
            parse_body(body)
            seen["jobs"] += 1
        except JobValidationError:
            seen["refusals"] += 1

    started = time.perf_counter()
    run()
    took = time.perf_counter() - started
    total = seen["jobs"] + seen["refusals"]
    print(
        f"job schema fuzz: {total} bodies ({seen['jobs']} valid jobs, {seen['refusals']} refusals naming a field), "
        f"no other outcome, {took:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
