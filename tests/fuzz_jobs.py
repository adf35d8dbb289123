"""Strategies and the property for fuzzing the job schema: any body is a job or a refusal naming a field."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from lambda_src.jobs.schema import JobSpec, JobValidationError, parse_body
from lambda_src.jobs.svox2_options import OPTIONS

_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 5e-324, 1e200, 1.2345678901234567e-300, 2**63]),
)
_values = st.recursive(
    st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=40)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
_configs = st.dictionaries(st.one_of(st.sampled_from(sorted(OPTIONS)), st.text(max_size=12)), _values, max_size=6)
_documents = st.one_of(
    st.fixed_dictionaries(
        {
            "scene": st.one_of(
                st.sampled_from(["lego", "/data/drums", "s3://b/k", "/etc", "../x"]), st.text(max_size=20)
            )
        },
        optional={"config": st.one_of(_configs, _values), "engine": _values, "name": _values, "gpu": _values},
    ),
    st.fixed_dictionaries(
        {
            "command": st.one_of(st.lists(st.text(max_size=30), max_size=6), _values),
            "config": st.one_of(_configs, _values),
        }
    ),
    _values,
)


def _option_value(name: str) -> st.SearchStrategy[Any]:
    """Values of the right type for an option (in range or not): mostly-valid jobs reach the deep checks."""
    opt = OPTIONS[name]
    if opt.type is bool:
        return st.booleans()
    if opt.type is int:
        return st.integers(min_value=-5, max_value=200_000)
    if opt.type is float:
        return st.floats(min_value=-1e3, max_value=1e6, allow_nan=False)
    if opt.choices:
        return st.sampled_from(list(opt.choices))
    if name == "reso":
        grid = st.one_of(st.integers(1, 600), st.lists(st.integers(1, 600), min_size=3, max_size=3))
        return st.lists(grid, min_size=1, max_size=3).map(json.dumps)
    return st.text(max_size=20)


_typed_configs = st.lists(st.sampled_from(sorted(OPTIONS)), max_size=6, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({n: _option_value(n) for n in names})
)
_jobs = st.fixed_dictionaries(
    {"scene": st.sampled_from(["lego", "demo", "/data/nerf_synthetic/drums", "s3://b/scenes/x"])},
    optional={"config": _typed_configs, "engine": st.sampled_from(["auto", "torch", "svox2", "gpu"])},
)
# what a hostile client sends: names with a trailing newline or a control character, numbers no record
# holds, and nesting thousands deep (in the body, and in svox2's reso string, parsed again)
_controls = st.sampled_from(["\n", "\r", "\t", "\x1b[2J", "\x1b]0;x\x1b\\", "\x00", "\u202e", "[/]"])
_hostile_names = st.tuples(st.sampled_from(["lego", "nl", "demo", "0"]), _controls).map(lambda t: t[0] + t[1])
_deep = st.integers(min_value=17, max_value=3000)
_hostile = st.one_of(
    st.tuples(st.sampled_from(["name", "scene", "gpu", "engine", "preset"]), _hostile_names).map(
        lambda t: json.dumps({"scene": "lego", t[0]: t[1]}).encode()
    ),
    _deep.map(lambda n: b'{"scene": "lego", "config": ' + b"[" * n + b"]" * n + b"}"),
    _deep.map(lambda n: json.dumps({"scene": "lego", "config": {"reso": "[" * n + "]" * n}}).encode()),
    st.sampled_from(["batch_size", "n_iters", "max_grid_elements", "lr_sigma"]).flatmap(
        lambda k: st.sampled_from([10**12, 10**40, 1e300, -(10**30)]).map(
            lambda v: json.dumps({"scene": "lego", "config": {k: v}}).encode()
        )
    ),
)
bodies = st.one_of(
    _jobs.map(lambda d: json.dumps(d).encode()),
    _documents.map(lambda d: json.dumps(d, allow_nan=True).encode()),
    _hostile,
    st.binary(max_size=300),
)


def check_body(body: bytes) -> None:
    """The property: a valid job, or a JobValidationError with a field and a message; nothing else."""
    try:
        spec = parse_body(body)
    except JobValidationError as exc:
        assert exc.field and exc.message, exc
        return
    except RecursionError:  # pragma: no cover - reported as the failure it is
        raise AssertionError("a body nested deeply crashed the parser") from None
    assert isinstance(spec, JobSpec)
    json.dumps(spec.to_dict())  # what is stored must be serialisable


def describe(value: Any) -> str:
    return repr(value)[:200]
