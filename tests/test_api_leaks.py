"""No answer of the jobs API - to any method, path, query or body a fuzzer sends - carries a traceback
or a path of the host it runs on."""

from __future__ import annotations

import json
import sys
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.context import Context
from tests.fuzz_jobs import bodies
from tests.helpers import api, http

_ids = st.one_of(
    st.uuids().map(str), st.text(max_size=40), st.sampled_from(["", "..", "%2e%2e", "nope", "a" * 300])
)
_queries = st.dictionaries(
    st.sampled_from(["limit", "state", "next_token", "x"]),
    st.one_of(st.text(max_size=60), st.sampled_from(["-1", "0", "1e9", "eyJqb2JfaWQiOnsiUyI6Im5vcGUifX0="])),
    max_size=3,
)
_requests = st.tuples(
    st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]),
    st.sampled_from(["jobs", "jobs/{id}", "jobs/{id}/cancel", "jobs/{id}/log", "{id}", "jobs/{id}/{id}"]),
    _ids,
    _queries,
    st.one_of(st.none(), bodies),
)


def _leaks(text: str, home: str) -> list[str]:
    markers = ["Traceback", 'File "', "site-packages", sys.prefix, home, "/local/lambda/", ".py\", line"]
    return [m for m in markers if m and m in text]


def test_no_answer_carries_a_traceback_or_a_host_path(cloud: Context) -> None:
    url, headers = api(cloud)
    home = str(cloud.home.root)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_requests)
    def probe(request: tuple) -> None:
        method, template, job_id, query, body = request
        path = template.replace("{id}", quote(job_id, safe=""))
        qs = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
        status, answer = http(method, f"{url}{path}" + (f"?{qs}" if qs else ""), body, headers)
        text = answer if isinstance(answer, str) else json.dumps(answer)
        assert not _leaks(text, home), (method, path, qs, status, text[:500])
        assert status < 500 or status == 503, (method, path, qs, status, text[:500])

    probe()
