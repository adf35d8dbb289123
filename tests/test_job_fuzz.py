"""A fuzzer over the job schema (hypothesis): valid jobs parse, anything else is a refusal naming a
field, never another exception. The long form (10,000 cases) is benchmarks/fuzz_bench.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz_jobs import bodies, check_body

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_any_body_is_a_job_or_a_refusal_naming_a_field(body: bytes) -> None:
    check_body(body)
