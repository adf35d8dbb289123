"""The SDS-Inf run request: one typed value at both ends, the same JSON on the wire."""

from __future__ import annotations

import json

import pytest

from lambda_src.sdsinf.contracts import RunRequest
from lambda_src.sdsinf.direct import run_request


def _started() -> RunRequest:
    return run_request(
        "20261204-170000-0a1b2c", "c1_queue", "gc", "weights-b", "inference-b", "metrics-b",
        has_truth=False, model_params={"numData": 1000, "batchSize": 500},
        invoc_params={"bfr": 2, "nlevels": 2, "total_nworkers": 6}, partition="row",
    )  # fmt: skip


def test_a_run_request_goes_over_the_wire_and_back_unchanged() -> None:
    request = _started()
    wire = json.loads(request.to_json())
    # the JSON form the functions have always taken: no key added, truth there as null
    assert wire == {
        "run_id": "20261204-170000-0a1b2c", "config": "c1_queue",
        "model": {"bucket": "weights-b", "key": "gc/network.npz"},
        "inputs": {"bucket": "inference-b", "key": "gc/inputs.npz"},
        "metrics": {"bucket": "metrics-b", "prefix": "runs/20261204-170000-0a1b2c"},
        "truth": None, "partition": "row", "model_params": {"numData": 1000, "batchSize": 500},
        "invoc_params": {"bfr": 2, "nlevels": 2, "total_nworkers": 6},
    }  # fmt: skip
    assert RunRequest.from_event(wire) == request
    worker = request.for_worker(3).with_variant("queue")
    back = RunRequest.from_event(json.loads(worker.to_json()))
    assert back == worker and back.worker_id == 3 and back.variant == "queue" and request.worker_id is None
    assert back.prefix == "runs/20261204-170000-0a1b2c" and back.poll_timeout == 60.0


def test_keys_a_newer_sender_adds_are_kept_and_a_request_without_its_core_is_refused() -> None:
    wire = {**json.loads(_started().to_json()), "trace": {"span": 7}, "worker_id": "4"}
    request = RunRequest.from_event(wire)
    assert request.extra == {"trace": {"span": 7}} and request.worker_id == 4
    assert json.loads(request.to_json())["trace"] == {"span": 7}
    with pytest.raises(ValueError, match="metrics, model missing"):
        RunRequest.from_event({"run_id": "r", "config": "c", "inputs": {}})


def test_a_worker_knows_its_id_only_from_a_request_handed_down_the_tree() -> None:
    request = _started()
    assert request.for_worker(5).worker == 5
    with pytest.raises(ValueError, match="carries no worker_id"):
        _ = request.worker


def test_a_distributed_request_without_its_worker_function_is_refused_before_any_worker_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lambda_src.sdsinf import distributed

    started: list[str] = []
    # recorded, not run: the point is that nothing is invoked at all
    monkeypatch.setattr(distributed, "invoke", lambda function, event: started.append(function))
    request = _started()
    assert request.worker_function is None
    with pytest.raises(ValueError, match="names no worker_function"):
        distributed.coordinate(request.to_event(), "queue")
    assert started == []
