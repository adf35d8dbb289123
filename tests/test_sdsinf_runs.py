"""SDS-Inf runs on the local cloud: the Serial variant as a Lambda, end to end."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.context import Context
from backend.core.errors import ConfigError, NotFoundError, SkydeckError
from backend.sdsinf.data import generate
from backend.sdsinf.plans import RunPlan
from backend.sdsinf.runs import SdsinfRuns
from lambda_src.sdsinf.contracts import LiveMetric
from lambda_src.sdsinf.metrics import S3_LAYERSTATS_COLUMNS, S3_METRICS_COLUMNS, from_csv
from lambda_src.sdsinf.npz_codec import unpack_matrix
from lambda_src.sdsinf.partition_files import load_part
from lambda_src.sdsinf.shards import Shards
from lambda_src.sdsinf.wire import MAX_MESSAGE_CHARS


def _plan(data: str, variant: str, config: str = "", workers: int = 1, **choices: Any) -> RunPlan:
    """A run decided here rather than by a preset: the dataset, the variant and any other choice."""
    return RunPlan(preset=config, data=data, variant=variant, workers=workers, **choices)


def assert_per_input_results_are_the_originals(runs: SdsinfRuns, run_id: str, data: Path, layers: int, n: int) -> None:
    """results.csv against the original's per-input results restated: `H.argmax(axis=0)` and `H.max(axis=0)`
    of the final activations (the lowest neuron among equal maxima; neuron 0 and 0.0 for a dead input).
    Sums in another order differ in the last float bits, so where several neurons are within them of the
    maximum, any of them is the argmax."""
    import numpy as np

    from backend.sdsinf.data import load_dataset
    from lambda_src.sdsinf.kernel import reference

    net, y, _ = load_dataset(data, 1024, layers)
    h = reference(y[:n], net.layers, net.bias).toarray().T  # the original's H: neurons x inputs
    rows = from_csv(runs._get(runs.out["MetricsBucket"], f"runs/{run_id}/results.csv").decode())
    assert [int(r["SAMPLE"]) for r in rows] == list(range(n))
    top = h.max(axis=0)
    named = [h[int(r["MAX_ROW"]), i] for i, r in enumerate(rows)]
    assert named == pytest.approx(top.tolist(), abs=1e-4)
    assert [float(r["MAX_VAL"]) for r in rows] == pytest.approx(top.tolist(), abs=1e-4)
    dead = np.flatnonzero(top == 0)
    assert [int(rows[i]["MAX_ROW"]) for i in dead] == [0] * dead.size
    assert any(float(r["MAX_VAL"]) > 0 for r in rows) and any(float(r["MAX_VAL"]) == 0 for r in rows)


@pytest.fixture(scope="module")
def runs(cloud_home) -> SdsinfRuns:  # noqa: ANN001
    ctx = Context.create(None, cloud_home)
    ctx.stacks.deploy("sdsinf")
    return SdsinfRuns(ctx)


def test_serial_run_streams_metrics_and_writes_the_original_files(runs: SdsinfRuns, tmp_path: Path) -> None:
    info = generate(tmp_path / "gc", 1024, 12, 150, seed=7)
    runs.upload(tmp_path / "gc", 1024, 12, "small")
    started = runs.start(_plan("small", "serial", batch=100, config="t_1024n_1w_100bs_serial"))
    seen: list[LiveMetric] = []
    summary = runs.follow(started.run_id, on_metric=seen.append, timeout_s=120)
    assert summary.matches_truth is True and summary.categories == info["categories"]
    assert len(seen) == 12 * 2  # every layer of both batches, as it happened
    assert {m.layer for m in seen} == set(range(12)) and {m.batch for m in seen} == {1, 2}
    shown = runs.show(started.run_id)
    assert {"metrics.csv", "layerstats-worker-0000.csv", "categories.tsv", "summary.json"} <= set(shown["files"])
    # the original Serial worker's S3 schema: the model and inputs (and truth) read, nothing written
    assert list(shown["metrics"]) == S3_METRICS_COLUMNS
    metrics = shown["metrics"]
    assert metrics["NUM_BATCHES"] == "2" and metrics["CONFIG"] == "t_1024n_1w_100bs_serial"
    assert (metrics["METRIC_S3_NUM_READS"], metrics["METRIC_S3_NUM_WRITES"]) == ("3", "0")
    assert 0 < int(float(metrics["METRIC_MAX_ROW_NNZ"])) <= 100
    bucket = runs.out["MetricsBucket"]
    stats = from_csv(runs._get(bucket, f"runs/{started.run_id}/layerstats-worker-0000.csv").decode())
    assert list(stats[0]) == S3_LAYERSTATS_COLUMNS and len(stats) == 24
    assert started.run_id in [r.run_id for r in runs.runs()]
    assert runs.show(started.run_id[:-2])["run_id"] == started.run_id  # a unique prefix is enough
    assert_per_input_results_are_the_originals(runs, started.run_id, tmp_path / "gc", 12, 150)


def test_an_original_payload_runs_as_it_is_with_its_numdata_and_batches(runs: SdsinfRuns, tmp_path: Path) -> None:
    import json

    from backend.sdsinf.runs import plan_from_payload

    original = Path(__file__).parent / "fixtures" / "sdsinf_payloads" / "b1_1024n_1w_10000bs_payload_serial.json"
    doc = json.loads(original.read_text())
    doc["model_params"].update(numLayers=12, numData=100, batchSize=50, numBatches=2)
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(doc))
    plan = plan_from_payload(payload, data="small")  # the dataset the first test uploaded
    assert (plan.variant, plan.workers, plan.num_data, plan.batch) == ("serial", 1, 100, 50)
    started = runs.start(plan)  # typed: what `sdsinf run --json` prints as its "started" event
    assert (started.variant, started.data, started.workers) == ("serial", "small", 1)
    assert started.to_dict() == {"run_id": started.run_id, "variant": "serial", "data": "small",
                                 "prefix": f"runs/{started.run_id}", "workers": 1}  # fmt: skip
    summary = runs.follow(started.run_id, timeout_s=120)
    assert summary.config == "b1_1024n_1w_10000bs_serial" and summary.inputs == 100
    metrics = runs.show(started.run_id)["metrics"]
    assert metrics["NUM_DATA"] == "100" and metrics["NUM_BATCHES"] == "2" and metrics["BATCH_SIZE"] == "50"


def test_a_run_that_crashes_fails_in_bounded_time(runs: SdsinfRuns) -> None:
    out = runs.out
    runs.s3.put_object(Bucket=out["WeightsBucket"], Key="broken/network.npz", Body=b"not an npz")
    runs.s3.put_object(Bucket=out["InferenceBucket"], Key="broken/inputs.npz", Body=b"nor this")
    started = runs.start(_plan("broken", "serial"))
    with pytest.raises(SkydeckError, match="made no progress"):
        runs.follow(started.run_id, idle_timeout_s=3)


def test_unknown_data_and_variants_are_refused(runs: SdsinfRuns) -> None:
    with pytest.raises(NotFoundError, match="sdsinf data upload"):
        runs.start(_plan("nothing-here", "serial"))
    with pytest.raises(Exception, match="this build runs queue, object, serial, server"):
        runs.start(_plan("small", "carrier-pigeon"))


@pytest.mark.parametrize("wire", ["original", "compact"])
def test_an_object_worker_with_nothing_to_send_writes_the_originals_empty_nul_mark(
    runs: SdsinfRuns, tmp_path: Path, wire: str
) -> None:
    # the original writes an empty-body .nul for "nothing for you", not counted among the layer's files
    # written and never read; skydeck wrote a (3, 1) .dat of zeros, counted as written and read
    runs.ctx.stacks.deploy("sdsinf")
    generate(tmp_path / "gc", 1024, 6, 20, seed=5, density=(0.0, 0.01))  # the inputs die in a layer or two
    runs.upload(tmp_path / "gc", 1024, 6, f"dying-{wire}")
    started = runs.start(_plan(f"dying-{wire}", "object", workers=2, config="t_1024n_2w_object", wire=wire))
    summary = runs.follow(started.run_id, timeout_s=180)
    assert summary.matches_truth is True
    rows = [
        r
        for k in range(2)
        for r in from_csv(
            runs._get(runs.out["MetricsBucket"], f"runs/{started.run_id}/layerstats-worker-{k:04d}.csv").decode()
        )
    ]
    metrics = runs.show(started.run_id)["metrics"]
    nul_written = sum(int(r["NULL_FILES_WRITTEN"]) for r in rows)
    files = sum(int(r["FILES_WRITTEN"]) for r in rows)
    shards = Shards.from_outputs(runs.out)
    keys = [key for b in shards.buckets[:2] for key in runs._keys(b, f"{started.run_id}/")]
    if wire == "original":
        assert nul_written > 0 and nul_written == sum(int(r["NULL_FILES_OBSERVED"]) for r in rows)
        assert sum(key.endswith(".nul") for key in keys) == nul_written
        assert int(metrics["METRIC_S3_NUM_READS"]) == files  # a .nul is never read
        assert int(metrics["METRIC_S3_NUM_WRITES"]) == files + nul_written
    else:
        assert not any(key.endswith(".nul") for key in keys) and nul_written > 0
        assert int(metrics["METRIC_S3_NUM_READS"]) == int(metrics["METRIC_S3_NUM_WRITES"]) == files


@pytest.mark.parametrize("workers", [1, 3])
def test_object_variant_exchanges_partials_through_s3(runs: SdsinfRuns, tmp_path: Path, workers: int) -> None:
    runs.ctx.stacks.deploy("sdsinf")  # picks up the object functions if the stack predates them
    info = generate(tmp_path / "gc", 1024, 6, 60, seed=11)
    runs.upload(tmp_path / "gc", 1024, 6, f"obj{workers}")
    started = runs.start(_plan(f"obj{workers}", "object", workers=workers, config=f"t_1024n_{workers}w_object"))
    seen: list[LiveMetric] = []
    summary = runs.follow(started.run_id, on_metric=seen.append, timeout_s=180)
    assert summary.matches_truth is True and summary.categories == info["categories"]
    assert {m.worker for m in seen} == set(range(workers)) and len(seen) == workers * 6
    shown = runs.show(started.run_id)
    metrics = shown["metrics"]
    assert list(metrics) == S3_METRICS_COLUMNS  # the original Object worker's schema: files, not messages
    if workers > 1:
        assert int(metrics["METRIC_S3_NUM_WRITES"]) > 0 and all(m.messages_received > 0 for m in seen)
        # every file written was read (the original's .nul marks are written, never read), and the layer rows
        # add up to the run's row
        rows = [
            r
            for k in range(workers)
            for r in from_csv(
                runs._get(runs.out["MetricsBucket"], f"runs/{started.run_id}/layerstats-worker-{k:04d}.csv").decode()
            )
        ]
        assert list(rows[0]) == S3_LAYERSTATS_COLUMNS
        written = sum(int(r["FILES_WRITTEN"]) for r in rows)
        assert written == int(metrics["METRIC_S3_NUM_READS"])
        assert written + sum(int(r["NULL_FILES_WRITTEN"]) for r in rows) == int(metrics["METRIC_S3_NUM_WRITES"])
        # the original compiles its stats before its last batch-end wait: the run's scans leave that wait out
        assert sum(int(r["NUM_FOLDER_SCANS"]) for r in rows) > int(metrics["METRIC_S3_FOLDER_SCANS"])
        # the batch-end wait lists the base bucket at least once: counted at the last layer, as the original
        last = [r for r in rows if r["LAYER"] == "5"]
        assert len(last) == workers and all(int(r["NUM_FOLDER_SCANS"]) >= 2 for r in last)
        # as the original: a block for worker K lies in intermediate bucket K mod 10, and each worker
        # marked the end of the batch in the base bucket
        shards = Shards.from_outputs(runs.out)
        assert shards.count == 10
        run_id = started.run_id
        for k in range(10):
            keys = list(runs._keys(shards.buckets[k], f"{run_id}/"))
            if k < workers:
                assert keys and all(f"/to{k:04d}/" in key for key in keys), (k, keys[:3])
            else:
                assert keys == []
        marks = sorted(runs._keys(shards.intermediate_bucket, f"{run_id}/sync/"))
        assert marks == [f"{run_id}/sync/b0001/{k:04d}.syn" for k in range(workers)]
    assert {f"layerstats-worker-{k:04d}.csv" for k in range(workers)} <= set(shown["files"])


@pytest.mark.parametrize("workers", [1, 4])
def test_queue_variant_exchanges_blocks_through_sns_and_sqs(runs: SdsinfRuns, tmp_path: Path, workers: int) -> None:
    runs.ctx.stacks.deploy("sdsinf")  # picks up the queue functions if the stack predates them
    info = generate(tmp_path / "gc", 1024, 6, 60, seed=14)
    runs.upload(tmp_path / "gc", 1024, 6, f"q{workers}")
    started = runs.start(_plan(f"q{workers}", "queue", workers=workers, config=f"t_1024n_{workers}w_queue"))
    sqs = runs.ctx.clients.client("sqs")
    prefix = runs.queue_prefix(started.run_id)
    assert len(sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])) == workers
    seen: list[LiveMetric] = []
    summary = runs.follow(started.run_id, on_metric=seen.append, timeout_s=180)
    assert summary.variant == "queue" and summary.matches_truth is True
    assert summary.categories == info["categories"]
    assert {m.worker for m in seen} == set(range(workers)) and len(seen) == workers * 6
    metrics = runs.show(started.run_id)["metrics"]
    # the per-layer rows add up to the run's row, as in the original (its sums over workers)
    bucket = runs.out["MetricsBucket"]
    rows = [
        row
        for k in range(workers)
        for row in from_csv(runs._get(bucket, f"runs/{started.run_id}/layerstats-worker-{k:04d}.csv").decode())
    ]
    # the original's span: from before its Phase-1 scan to the batch's end, so it holds every layer
    assert float(metrics["METRIC_ELAPSED_TIME_BATCH"]) >= sum(float(r["LAYER_DURATION"]) for r in rows)
    assert sum(int(r["MSG_NUM"]) for r in rows) == int(metrics["METRIC_NUM_MESSAGES_SENT"])
    assert int(metrics["METRIC_NUM_MESSAGES_SENT"]) == int(metrics["METRIC_NUM_MESSAGES_RECEIVED"])
    assert sum(int(r["PUBLISH_NUM"]) for r in rows) == int(metrics["METRIC_PUBLISH_CALLS"])
    assert float(metrics["METRIC_LAMBDA_RUNTIME"]) >= float(metrics["METRIC_ELAPSED_TIME_BATCH"])
    if workers > 1:
        assert int(metrics["METRIC_PUBLISH_CALLS"]) > 0 and int(metrics["METRIC_NUM_MESSAGES_RECEIVED"]) > 0
        assert int(metrics["METRIC_RECEIVE_POLL_CALLS"]) > 0
        assert max(m.bytes_sent for m in seen) > 0
    # every message in the original's wire form fits one SNS message
    assert max(float(r["MSG_MAX_SIZE"]) for r in rows) <= MAX_MESSAGE_CHARS
    assert_per_input_results_are_the_originals(runs, started.run_id, tmp_path / "gc", 6, 60)
    # the run's queues and subscriptions are gone once it ended
    assert sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []) == []
    sns = runs.ctx.clients.client("sns")
    for topic in [*Shards.from_outputs(runs.out).topics, runs.out["CoordinationTopicArn"]]:
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)
        assert not [x for x in subs["Subscriptions"] if prefix in x["Endpoint"]]


def test_component_partition_sends_fewer_rows_and_gives_the_same_answer(runs: SdsinfRuns, tmp_path: Path) -> None:
    info = generate(tmp_path / "gc", 1024, 6, 60, seed=15)
    runs.upload(tmp_path / "gc", 1024, 6, "part")
    sent = {}
    for partition in ("row", "component"):
        started = runs.start(_plan("part", "queue", workers=4, config=f"t_{partition}", partition=partition))
        summary = runs.follow(started.run_id, timeout_s=180)
        assert summary.matches_truth is True and summary.categories == info["categories"]
        assert summary.partition == partition
        sent[partition] = int(runs.show(started.run_id)["metrics"]["METRIC_SIZE_MESSAGES_SENT"])
    assert sent["component"] < sent["row"] / 2
    # each partition's per-worker files were made once and kept beside the dataset for reuse: a
    # connectivity file per set, and per worker its own slice of the weights and of the inputs
    kept = runs.s3.list_objects_v2(Bucket=runs.out["ConnectivityBucket"], Prefix="part/parts/").get("Contents", [])
    assert sorted(o["Key"].split("/")[2].split("-")[0] for o in kept) == ["component", "row"]
    assert runs.parts("part", "component", 4)["connectivity"]["key"] in [o["Key"] for o in kept]
    for partition in ("row", "component"):
        parts = runs.parts("part", partition, 4)
        mine = [load_part(runs._get, parts, k) for k in range(4)]
        # a worker reads its quarter of the weights (the columns of the neurons it computes) and of the
        # inputs, and together they are the whole model and all the inputs
        assert [sum(c.nnz for c in m.columns) for m in mine] == [32 * 1024 * 6 // 4] * 4
        assert (
            sum(m.inputs.nnz for m in mine)
            == unpack_matrix(runs._get(runs.out["InferenceBucket"], "part/inputs.npz")).nnz
        )
        assert sum(m.inputs.shape[1] for m in mine) == 1024 and {m.inputs.shape[0] for m in mine} == {60}
    with pytest.raises(Exception, match="--partition must be one of row, component, greedy"):
        runs.start(_plan("part", "queue", workers=2, partition="random"))


def test_queue_blocks_are_chunked_under_the_message_limit_and_reassembled(runs: SdsinfRuns) -> None:
    import os

    import numpy as np

    from lambda_src.sdsinf.queue_variant import QueueTransport
    from lambda_src.sdsinf.wire import MAX_MESSAGE_CHARS, Codec

    runs.ctx.stacks.deploy("sdsinf")
    run_id = f"chunk-{os.urandom(3).hex()}"
    event = {"run_id": run_id, **runs.transport("queue", run_id, 2)}
    env = runs.ctx.clients.env()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        sender, receiver = QueueTransport(event["queue"], run_id, 0), QueueTransport(event["queue"], run_id, 1)
        rng = np.random.default_rng(5)
        # incompressible values: 70,000 nonzeros make two chunks of the original's 40,000 cap, each then
        # split under 99% of 256 KiB
        block = ((rng.random((1000, 100)) < 0.7) * rng.random((1000, 100)) * 32).astype(np.float32)
        messages = Codec("queue").encode(np.arange(100), block, layer=3)
        sizes = sender.send(layer=3, dst=1, messages=messages, empty=False)
        assert len(sizes) >= 3 and max(sizes) <= MAX_MESSAGE_CHARS
        assert sender.publish_calls == 0  # held until the layer's sends are done, as the original batches
        sender.flush()
        # a batch holds what fits under 99% of 256 KiB
        assert sender.publish_calls >= 2 and max(sender.publish_sizes) <= MAX_MESSAGE_CHARS
        got = receiver.receive(layer=3, senders=[0], timeout_s=10)
        assert got == [messages]
        coo = Codec("queue").decode(got[0], neurons=100, batch=1000)
        full = np.zeros((1000, 100), dtype=np.float32)
        full[coo.cols, coo.rows] = coo.values
        assert np.array_equal(full, block)
        assert receiver.received_messages == len(messages)
        assert sender.send(layer=5, dst=1, messages=[], empty=True) == []  # a mark, not a message
        assert receiver.receive(layer=5, senders=[0], timeout_s=10) == []
        assert sender.table_writes == 1 and receiver.table_reads >= 1
        from lambda_src.sdsinf.distributed import Stalled

        with pytest.raises(Stalled, match="worker 1 waited 1s at layer 4 for worker\\(s\\) 0000"):
            receiver.receive(layer=4, senders=[0], timeout_s=1)
        # as the original: worker K publishes to data topic K mod 10; every run queue listens to all ten
        shards = Shards.from_outputs(runs.out)
        assert sender.topic == shards.topics[0] and receiver.topic == shards.topics[1]
        assert QueueTransport({**event["queue"], "queue_urls": [""] * 14}, run_id, 13).topic == (shards.topics[3])
        sns = runs.ctx.clients.client("sns")
        for topic in [*shards.topics, shards.coordination_topic]:
            endpoints = [x["Endpoint"] for x in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]
            assert len([e for e in endpoints if runs.queue_prefix(run_id) in e]) == 2, topic
        # the batch end: each says so on the coordination topic and returns once both have
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda t: t.end_batch(1, 2, 10), [sender, receiver]))
        with pytest.raises(Stalled, match="worker 0 waited 1s at the end of batch 2 for worker\\(s\\) 0001"):
            sender.end_batch(2, 2, 1)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        runs.cleanup_queues(run_id)


def test_a_worker_that_never_starts_fails_the_object_run_naming_it(runs: SdsinfRuns, tmp_path: Path) -> None:
    _run_with_a_missing_worker(runs, tmp_path, "obj-fault", seed=12, variant="object")


def test_server_baseline_runs_as_a_local_process(runs: SdsinfRuns, tmp_path: Path) -> None:
    info = generate(tmp_path / "gc", 1024, 8, 80, seed=13)
    runs.upload(tmp_path / "gc", 1024, 8, "srv")
    started = runs.start(_plan("srv", "server", config="t_server"))
    summary = runs.follow(started.run_id, timeout_s=120)
    assert summary.variant == "server" and summary.matches_truth is True
    assert summary.categories == info["categories"]


def test_run_command_repeats_and_reports_medians_and_cost(runs: SdsinfRuns, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    generate(tmp_path / "gc", 1024, 6, 60, seed=14)
    runs.upload(tmp_path / "gc", 1024, 6, "cli-small")
    env = {**os.environ, "SKYDECK_HOME": str(runs.ctx.home.root)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "sdsinf",
            "run",
            "b1_1024n_1w_10000bs_serial",
            "--data",
            "cli-small",
            "--repeat",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    summaries = [e for e in events if e["event"] == "summary"]
    assert len(summaries) == 2 and sum(e["event"] == "layer" for e in events) == 12
    assert all(s["cost_usd"] > 0 and s["requests"] == 1 and s["gb_seconds"] > 0 for s in summaries)
    median = next(e for e in events if e["event"] == "median")
    assert median["runs"] == [s["run_id"] for s in summaries] and median["all_match_truth"]
    low, high = sorted(s["runtime_s"] for s in summaries)
    assert low <= median["runtime_s"] <= high
    # the two runs fetched together: each in its own folder, the master files their medians
    from tests.test_cli import run as cli

    out = tmp_path / "both"
    newest = summaries[-1]["run_id"]
    fetched = cli(runs.ctx.home.root, "sdsinf", "fetch", newest, "--out", str(out), "--repeat", "2", "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["runs"] == sorted((s["run_id"] for s in summaries), reverse=True)
    rows = [from_csv((out / s["run_id"] / "metrics.csv").read_text())[0] for s in summaries]
    master = from_csv((out / "master_metrics_b1_1024n_1w_10000bs_serial.csv").read_text())
    assert len(master) == 1 and list(master[0]) == S3_METRICS_COLUMNS
    for column in ("METRIC_ELAPSED_TIME_TOTAL", "METRIC_LAMBDA_RUNTIME", "METRIC_S3_NUM_READS"):
        values = sorted(float(r[column]) for r in rows)
        assert float(master[0][column]) == pytest.approx(sum(values) / 2, rel=1e-5), column
    layers = from_csv((out / "master_layerstats_b1_1024n_1w_10000bs_serial.csv").read_text())
    assert [r["LAYER"] for r in layers] == [str(n) for n in range(6)]
    more = cli(runs.ctx.home.root, "sdsinf", "fetch", newest, "--out", str(out), "--repeat", "3")
    assert more.returncode == 2 and "2 finished run(s) of b1_1024n_1w_10000bs_serial" in more.stderr, more.stderr
    assert "--repeat 3" in more.stderr


def test_server_on_ec2_launches_from_the_stack_template_and_terminates_itself(runs: SdsinfRuns) -> None:
    runs.ctx.stacks.deploy("sdsinf")
    uri = f"s3://{runs.out['MetricsBucket']}/runs/r1/request.json"
    script = runs.server.job_user_data(uri)
    assert script.startswith("#!/bin/bash") and "shutdown -h now' EXIT" in script
    assert f"s3://{runs.out['ServerResourcesBucket']}/logs/r1.log" in script
    assert f"-m lambda_src.sdsinf.server_variant --event-s3 {uri}" in script
    instance_id = runs.server.launch_instance("r1", uri)  # against the local cloud's EC2
    ec2 = runs.ctx.clients.client("ec2")
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
    assert tags.get("skydeck:sdsinf-run") == "r1"
    template = ec2.describe_launch_template_versions(LaunchTemplateId=runs.out["ServerLaunchTemplateId"])
    data = template["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_a_queue_worker_that_never_starts_fails_the_run_in_bounded_time(runs: SdsinfRuns, tmp_path: Path) -> None:
    runs.ctx.stacks.deploy("sdsinf")
    run_id = _run_with_a_missing_worker(runs, tmp_path, "q-fault", seed=16, variant="queue")
    sqs = runs.ctx.clients.client("sqs")
    assert sqs.list_queues(QueueNamePrefix=runs.queue_prefix(run_id)).get("QueueUrls", []) == []


def _run_with_a_missing_worker(
    runs: SdsinfRuns,
    tmp_path: Path,
    data: str,
    seed: int,
    variant: str,
) -> str:
    """Start workers 0 and 1 of 3 (worker 2 never starts): the run must fail within seconds, naming it."""
    import json
    import time

    generate(tmp_path / "gc", 1024, 4, 30, seed=seed)
    runs.upload(tmp_path / "gc", 1024, 4, data)
    out = runs.out
    run_id = f"{data}-{int(time.time() * 1000)}"
    worker_function = out[f"{variant.capitalize()}WorkerFunction"]
    event = {
        "run_id": run_id, "config": data, "truth": None, "model_params": {},
        "model": {"bucket": out["WeightsBucket"], "key": f"{data}/network.npz"},
        "inputs": {"bucket": out["InferenceBucket"], "key": f"{data}/inputs.npz"},
        "metrics": {"bucket": out["MetricsBucket"], "prefix": f"runs/{run_id}"},
        "invoc_params": {"bfr": 3, "nlevels": 1, "total_nworkers": 3},
        "parts": runs.parts(data, "row", 3),
        "worker_function": worker_function, "poll_timeout_s": 2, **runs.transport(variant, run_id, 3),
    }  # fmt: skip
    lam = runs.ctx.clients.client("lambda")
    for k in (0, 1):  # worker 2 is never started
        lam.invoke(
            FunctionName=worker_function, InvocationType="Event", Payload=json.dumps({**event, "worker_id": k}).encode()
        )
    started = time.time()
    with pytest.raises(SkydeckError) as failed:
        runs.follow(run_id, timeout_s=60)
    # the cause first (the worker that never came), then its echo (the workers that waited for it)
    message = str(failed.value)
    assert "worker 0002 stopped before its first layer without reporting" in message, message
    assert "worker(s) 0000, 0001 waited at layer 0 for worker(s) 0002" in message, message
    assert "worker 0000 stopped" not in message and "worker 0001 stopped" not in message, message
    assert time.time() - started < 30
    return run_id


def test_always_on_server_takes_runs_from_its_queue_until_stopped(runs: SdsinfRuns, tmp_path: Path) -> None:
    runs.ctx.stacks.deploy("sdsinf")
    info = generate(tmp_path / "gc", 1024, 6, 40, seed=17)
    runs.upload(tmp_path / "gc", 1024, 6, "svc")
    assert runs.server.status()["running"] is False
    try:
        status = runs.server.up()
        assert status["running"] and status["where"] == "local process"
        assert runs.server.up()["pid"] == status["pid"]  # idempotent
        first = runs.start(_plan("svc", "server", config="t_svc_1", server_mode="service"))
        second = runs.start(_plan("svc", "server", config="t_svc_2", server_mode="service"))
        for started in (first, second):  # one process, two runs, in order
            summary = runs.follow(started.run_id, timeout_s=120)
            assert summary.variant == "server" and summary.categories == info["categories"]
    finally:
        stopped = runs.server.down()
    assert stopped["running"] is False and stopped["stopped"] is True
    assert "service" in runs.server.service_user_data(
        "https://queue.example/q"
    ) and "--serve https://queue.example/q" in (runs.server.service_user_data("https://queue.example/q"))


@pytest.mark.parametrize("variant,victim", [("queue", 2), ("object", 2), ("queue", 0)])
def test_a_worker_killed_mid_run_is_named_and_the_run_fails_in_bounded_time(
    runs: SdsinfRuns, tmp_path: Path, variant: str, victim: int
) -> None:
    """Four workers; one runs in a process of its own that is killed -9 once it has finished two
    layers. The run fails within seconds naming that worker as the cause, not the workers that waited
    (worker 0 writes the run's summary: when it is the one killed, the client finds the cause itself);
    `sdsinf show` then prints the failure instead of an AWS error."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    data = f"kill-{variant}-{victim}"
    generate(tmp_path / "gc", 1024, 120, 200, seed=21)
    runs.upload(tmp_path / "gc", 1024, 120, data)
    out = runs.out
    run_id = f"{data}-{int(time.time() * 1000)}"
    prefix = f"runs/{run_id}"
    worker_function = out[f"{variant.capitalize()}WorkerFunction"]
    event = {
        "run_id": run_id, "config": data, "truth": None, "model_params": {}, "partition": "row",
        "model": {"bucket": out["WeightsBucket"], "key": f"{data}/network.npz"},
        "inputs": {"bucket": out["InferenceBucket"], "key": f"{data}/inputs.npz"},
        "metrics": {"bucket": out["MetricsBucket"], "prefix": prefix},
        "invoc_params": {"bfr": 4, "nlevels": 1, "total_nworkers": 4},
        "parts": runs.parts(data, "row", 4),
        "worker_function": worker_function, "poll_timeout_s": 3, **runs.transport(variant, run_id, 4),
    }  # fmt: skip
    runs.s3.put_object(Bucket=out["MetricsBucket"], Key=f"{prefix}/request.json", Body=json.dumps(event))
    lam = runs.ctx.clients.client("lambda")
    for k in sorted({0, 1, 2, 3} - {victim}):
        lam.invoke(
            FunctionName=worker_function, InvocationType="Event", Payload=json.dumps({**event, "worker_id": k}).encode()
        )
    handler = f"lambda_src.sdsinf.{variant}_variant"
    code = f"import json, sys; from {handler} import worker; worker(json.loads(sys.stdin.read()))"
    env = {**os.environ, **runs.ctx.clients.env()}
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, env=env, text=True)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps({**event, "worker_id": victim}))
    proc.stdin.close()
    deadline = time.time() + 60
    while len(list(runs._keys(out["MetricsBucket"], f"{prefix}/live/worker-{victim:04d}/"))) < 2:
        assert proc.poll() is None and time.time() < deadline, "the worker ended before its second layer"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = time.time()
    with pytest.raises(SkydeckError) as failed:
        runs.follow(run_id, timeout_s=120)
    message = str(failed.value)
    assert time.time() - killed < 30, message
    assert f"worker {victim:04d} stopped after layer" in message, message
    for other in sorted({0, 1, 2, 3} - {victim}):
        assert f"worker {other:04d} stopped" not in message, message
    # the echo: who waited for whom (a worker that waited for the dead one may be waited for in turn)
    assert "waited" in message and f"{victim:04d}" in message.split("waited", 1)[1], message
    from tests.test_cli import run as cli

    shown = cli(runs.ctx.home.root, "sdsinf", "show", run_id)
    if shown.returncode == 0:  # worker 0 lived to write the summary; otherwise the follow above said it all
        assert "FAILED" in shown.stdout and f"worker {victim:04d} stopped" in shown.stdout, shown.stdout
        assert "NoSuchKey" not in shown.stdout + shown.stderr
    if variant == "queue":
        runs.cleanup_queues(run_id)


@pytest.mark.parametrize("variant", ["queue", "object"])
def test_the_original_payload_with_two_batches_and_a_two_level_tree(
    runs: SdsinfRuns, tmp_path: Path, variant: str
) -> None:
    """The original's Queue (and Object) payload with numData 600 in batches of 300, bfr 2 and
    nlevels 2: six workers in the original's tree, every batch inferred, categories as the truth."""
    import json

    from backend.sdsinf.runs import plan_from_payload

    runs.ctx.stacks.deploy("sdsinf")
    info = generate(tmp_path / "gc", 1024, 8, 600, seed=31)
    runs.upload(tmp_path / "gc", 1024, 8, "tree600")
    original = Path(__file__).parent / "fixtures" / "sdsinf_payloads" / f"c1_1024n_8w_10000bs_payload_{variant}.json"
    doc = json.loads(original.read_text())
    doc["model_params"].update(numLayers=8, numData=600, batchSize=300, numBatches=2)
    doc["invoc_params"].update(bfr=2, nlevels=2, total_nworkers=6)
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(doc))
    plan = plan_from_payload(payload, data="tree600")
    assert (plan.workers, plan.bfr, plan.nlevels, plan.batch, plan.num_data) == (6, 2, 2, 300, 600)
    seen: list[LiveMetric] = []
    started = runs.start(plan)
    summary = runs.follow(started.run_id, on_metric=seen.append, timeout_s=300)
    assert summary.matches_truth is True and summary.categories == info["categories"] and summary.inputs == 600
    assert {m.worker for m in seen} == set(range(6)) and {m.batch for m in seen} == {1, 2}
    assert len(seen) == 6 * 2 * 8  # every worker, every batch, every layer
    metrics = runs.show(started.run_id)["metrics"]
    assert (metrics["NUM_BATCHES"], metrics["BATCH_SIZE"], metrics["NUM_DATA"]) == ("2", "300", "600")
    assert (metrics["BFR"], metrics["NLEVELS"], metrics["TOTAL_NWORKERS"]) == ("2", "2", "6")
    bucket = runs.out["MetricsBucket"]
    rows = [
        row
        for k in range(6)
        for row in from_csv(runs._get(bucket, f"runs/{started.run_id}/layerstats-worker-{k:04d}.csv").decode())
    ]
    assert len(rows) == 6 * 2 * 8
    sent, received, batch_time, written = (
        ("METRIC_NUM_MESSAGES_SENT", "METRIC_NUM_MESSAGES_RECEIVED", "METRIC_ELAPSED_TIME_BATCH", "MSG_NUM")
        if variant == "queue"
        else ("METRIC_S3_NUM_WRITES", "METRIC_S3_NUM_READS", "METRIC_ELAPSED_TIME_TOTAL", "FILES_WRITTEN")
    )
    assert sum(int(r[written]) for r in rows) == int(metrics[sent]) == int(metrics[received])
    # the original's timer is never reset between batches: each batch's end adds the time since before
    # the first, so with two batches the first batch's layers count twice (its inf_batch_start_time)
    first = sum(float(r["LAYER_DURATION"]) for i, r in enumerate(rows) if i % 16 < 8)  # each worker's batch 1
    assert float(metrics[batch_time]) >= sum(float(r["LAYER_DURATION"]) for r in rows) + first
    assert float(metrics["METRIC_LAMBDA_RUNTIME"]) >= float(metrics[batch_time]) / 2
    # the columns the original fills and skydeck once left at 0, with the original's meaning
    assert 1 <= int(float(metrics["METRIC_MAX_ROW_NNZ"])) <= 300  # inputs using one sent neuron, in a batch
    assert sum(int(r["NNZ_SENT"]) for r in rows) > 0
    for r in rows:
        targets = max(int(r["LS_NUM_TARGETS" if variant == "queue" else "NUM_TARGETS"]), 1)
        assert float(r["ROWS_PER_TARGET"]) == pytest.approx(int(r["ROWS_SENT"]) / targets)
        if variant == "queue":
            assert (r["CHUNKS_SENT"], r["CHUNK_TOTAL_SIZE"]) == (r["MSG_NUM"], r["MSG_TOTAL_SIZE"])
    if variant == "queue":
        # one publish batch carries messages for several targets, as the original's does
        assert int(metrics["METRIC_PUBLISH_CALLS"]) < int(metrics["METRIC_NUM_MESSAGES_SENT"])
        most = int(float(metrics["METRIC_MAX_BATCH_MSG_SIZE"]))
        assert 0 < most <= 256 * 1024 and most == max(int(float(r["PUBLISH_MAX_SIZE"])) for r in rows)
        assert int(metrics["METRIC_DYNAMODB_UNIQUE_ITEMS_READ"]) <= int(metrics["METRIC_DYNAMODB_TOTAL_ITEMS_READ"])
        _fetch_and_compare(runs, started.run_id, tmp_path / "fetched", info["categories"])
    doc["invoc_params"].update(total_nworkers=5)
    payload.write_text(json.dumps(doc))
    from backend.core.errors import ConfigError

    with pytest.raises(ConfigError, match="total_nworkers is 5, but bfr 2 and nlevels 2 make a tree of 6"):
        plan_from_payload(payload, data="tree600")


def _fetch_and_compare(runs: SdsinfRuns, run_id: str, out: Path, categories: int) -> None:
    """`sdsinf fetch` writes the run's files and the original's master_* form; `sdsinf compare` puts the
    run beside a master file column by column (here its own: every numeric ratio is 1)."""
    import json

    from lambda_src.sdsinf.metrics import LAYERSTATS_COLUMNS, METRICS_COLUMNS
    from tests.test_cli import run as cli

    home = runs.ctx.home.root
    fetched = cli(home, "sdsinf", "fetch", run_id[:15], "--out", str(out), "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert all(p.startswith(str(out)) for p in json.loads(fetched.stdout)["files"])  # as --out was named
    again = cli(home, "sdsinf", "fetch", run_id[:15], "--out", str(out))  # as `jobs fetch`: asks for --overwrite
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert cli(home, "sdsinf", "fetch", run_id[:15], "--out", str(out), "--overwrite").returncode == 0
    # `show` takes the id's unique end too, as job ids are taken, and prints the metrics file's row
    shown = cli(home, "sdsinf", "show", run_id.rsplit("-", 1)[1])
    assert shown.returncode == 0 and run_id in shown.stdout, shown.stderr
    assert "metrics.csv:" in shown.stdout and "METRIC_LAMBDA_RUNTIME" in shown.stdout
    assert re.search(r"^runtime +\d+\.\d\d s$", shown.stdout, flags=re.M), shown.stdout
    names = {Path(p).name for p in json.loads(fetched.stdout)["files"]}
    config = json.loads((out / "summary.json").read_text())["config"]
    assert {"metrics.csv", "categories.tsv", "summary.json", f"master_metrics_{config}.csv"} <= names
    master = (out / f"master_metrics_{config}.csv").read_text().splitlines()
    assert master[0].split(",") == METRICS_COLUMNS and len(master) == 2
    layers = (out / f"master_layerstats_{config}.csv").read_text().splitlines()
    assert layers[0].split(",") == LAYERSTATS_COLUMNS and len(layers) == 1 + 6 * 2 * 8
    assert len((out / "categories.tsv").read_text().split()) == categories
    compared = cli(home, "sdsinf", "compare", run_id, "--with", str(out / f"master_metrics_{config}.csv"), "--json")
    assert compared.returncode == 0, compared.stderr
    columns = json.loads(compared.stdout)["columns"]
    assert [c["column"] for c in columns] == METRICS_COLUMNS
    assert all(c["ratio"] == pytest.approx(1.0) for c in columns if c["ratio"] is not None)
    piped = cli(home, "sdsinf", "compare", run_id, "--with", str(out / f"master_metrics_{config}.csv"))
    assert {line.split("\t")[0] for line in piped.stdout.splitlines()[1:]} == set(METRICS_COLUMNS)  # none cut
    broken = cli(home, "sdsinf", "compare", run_id, "--with", str(out / "categories.tsv"))
    assert broken.returncode == 2 and "not a metrics file" in broken.stderr


@pytest.mark.parametrize("variant", ["queue", "object", "serial"])
def test_invoking_the_deployed_function_with_an_original_payload_starts_the_run(
    runs: SdsinfRuns, tmp_path: Path, variant: str
) -> None:
    """As the original's README does: invoke the coordinator (or the Serial function) with a payload
    file. The run starts from the uploaded dataset the payload's weights subfolder names, writes where
    skydeck reads, and a Queue run's queues are gone once it ends."""
    import json

    runs.ctx.stacks.deploy("sdsinf")
    out = runs.out
    name = "b1_1024n_1w_10000bs" if variant == "serial" else "c1_1024n_8w_10000bs"
    original = Path(__file__).parent / "fixtures" / "sdsinf_payloads" / f"{name}_payload_{variant}.json"
    doc = json.loads(original.read_text())
    info = generate(tmp_path / "gc", 1024, 5, 200, seed=41)
    runs.upload(tmp_path / "gc", 1024, 5, name)
    doc["model_params"].update(numLayers=5, numData=200, batchSize=100, numBatches=2)
    if variant != "serial":
        doc["invoc_params"].update(bfr=2, nlevels=1, total_nworkers=2)
    function = {
        "queue": out["QueueCoordinatorFunction"], "object": out["ObjectCoordinatorFunction"],
        "serial": out["SerialFunction"],
    }[variant]  # fmt: skip
    lam = runs.ctx.clients.client("lambda")
    if variant == "serial":  # the Serial function runs the whole model in the call: start it asynchronously
        before = _run_ids(runs)
        lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(doc).encode())
        run_id = _wait_for_a_new_run(runs, before)
    else:
        answer = json.loads(lam.invoke(FunctionName=function, Payload=json.dumps(doc).encode())["Payload"].read())
        # the original coordinator's answer: {"statusCode": 200, "body": "{\"message\": ...}"}
        assert answer["statusCode"] == 200, answer
        body = json.loads(answer["body"])
        assert body["message"] == "Coordinator returning!"
        run_id = body["run_id"]
    summary = runs.follow(run_id, timeout_s=180)
    # the original's own files, where metrics_loc points (its bucket is not this stack's: the same keys in
    # the metrics bucket): one row, no header, led by expt_id; each worker's layer rows under EXPT_ID/
    loc = doc["data_params"]["metrics_loc"]
    s3 = runs.ctx.clients.client("s3")
    master = s3.get_object(Bucket=out["MetricsBucket"], Key=f"{loc['subfolder']}/{loc['filename']}")["Body"].read()
    rows = master.decode().splitlines()
    config = loc["filename"].split("_", 1)[1].removesuffix(".csv")
    assert len(rows) == 1 and rows[0].split(",")[:2] == [str(loc["expt_id"]), config]
    workers = 1 if variant == "serial" else 2
    assert rows[0].split(",")[2:5] == (["1", "1", "1"] if variant == "serial" else ["2", "1", "2"])
    from lambda_src.sdsinf.metrics import columns_for, worker_file_columns

    layer_keys = [f"{loc['subfolder']}/{loc['expt_id']}/W{k}_LS.csv" for k in range(workers)]
    if variant == "serial":  # the original's Serial worker writes no layer file, and 0 for what it did not measure
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=out["MetricsBucket"], Key=layer_keys[0])
        said = dict(zip(["EXPT_ID", *columns_for("serial")[0]], rows[0].split(","), strict=True))
        # written as the original's float32 stats array writes them
        assert said["METRIC_S3_NUM_READS"] == said["METRIC_ELAPSED_TIME_COMMUNICATION"] == "0.0"
        assert said["METRIC_MAX_FILE_SIZE"] == said["METRIC_MAX_ROW_NNZ"] == "0.0"
        layer_keys = []
    else:
        said = dict(zip(["EXPT_ID", *columns_for(variant)[0]], rows[0].split(","), strict=True))
        sent = said["METRIC_NUM_MESSAGES_SENT" if variant == "queue" else "METRIC_S3_NUM_WRITES"]
        assert sent.endswith(".0") and float(sent) > 0  # a count, as a float32 writes it
        took = said["METRIC_LAMBDA_RUNTIME"]
        assert took == str(np.float32(float(took)))  # "64.258354", not a float64's "64.25835418701172"
    for k, key in enumerate(layer_keys):
        layer_rows = s3.get_object(Bucket=out["MetricsBucket"], Key=key)["Body"].read().decode().splitlines()
        assert len(layer_rows) == 5 * 2 and all(r.startswith(f"{loc['expt_id']},{config},{k},") for r in layer_rows)
        # the original's WK_LS.csv: its timer's start and end around the layer's columns
        columns = ["EXPT_ID", *worker_file_columns(columns_for(variant)[1])]
        parsed = [dict(zip(columns, r.split(","), strict=True)) for r in layer_rows]
        assert columns[3:5] == ["LAYER", "LAYER_START_TIME"]
        assert columns[-2:] == ["LAYER_END_TIME", "LAYER_DURATION"]
        for row in parsed:
            start, end, took = (float(row[c]) for c in ("LAYER_START_TIME", "LAYER_END_TIME", "LAYER_DURATION"))
            # float32 readings, as the original's LayerStats array holds them: exact to about 1e-7 of their size
            assert start <= end and end - start == pytest.approx(took, abs=4e-7 * end + 1e-6)
            # its INTEGER_METRICS as ints, the rest as float32s
            assert row["NNZ"].isdigit() and row["WORKER_ID"] == str(k)
            assert row["LAYER_DURATION"] == str(np.float32(took))
    assert summary.config == doc["data_params"]["metrics_loc"]["filename"].split("_", 1)[1].removesuffix(".csv")
    assert summary.matches_truth is True and summary.categories == info["categories"] and summary.inputs == 200
    metrics = runs.show(run_id)["metrics"]
    assert (metrics["NUM_BATCHES"], metrics["BATCH_SIZE"]) == ("2", "100")
    if variant == "queue":
        import time

        sqs = runs.ctx.clients.client("sqs")
        prefix = runs.queue_prefix(run_id)
        deadline = time.time() + 20
        while sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls") and time.time() < deadline:
            time.sleep(0.5)
        assert not sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls"), "worker 0 leaves no queues behind"
    if variant == "object":  # a payload for another variant, or for data never uploaded, starts nothing
        queue_doc = json.loads(original.read_text().replace("_object", "_queue"))

        def refusal(payload: dict) -> str:
            sent = json.dumps(payload).encode()
            answer = json.loads(lam.invoke(FunctionName=function, Payload=sent)["Payload"].read())
            assert answer["statusCode"] == 400, answer
            return json.loads(answer["body"])["message"]

        said = refusal(queue_doc)
        assert "names a queue run" in said and "invoke the queue function" in said
        escaping = json.loads(json.dumps(doc))
        escaping["data_params"]["metrics_loc"]["subfolder"] = "expts/../../elsewhere"
        assert "data_params.metrics_loc.subfolder" in refusal(escaping)
        doc["data_params"]["weights_loc"]["subfolder"] = "expts/1024/never_uploaded"
        said = refusal(doc)
        assert "no dataset of that name is uploaded" in said and "--name never_uploaded" in said


def _run_ids(runs: SdsinfRuns) -> set[str]:
    return {k.split("/")[1] for k in runs._keys(runs.out["MetricsBucket"], "runs/") if k.endswith("/request.json")}


def _wait_for_a_new_run(runs: SdsinfRuns, before: set[str], timeout_s: float = 60) -> str:
    import time

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        fresh = sorted(_run_ids(runs) - before)
        if fresh:
            return fresh[-1]
        time.sleep(0.3)
    raise AssertionError("no run started")


def test_bfr_levels_and_num_data_come_from_the_preset_or_the_command_line(runs: SdsinfRuns, tmp_path: Path) -> None:
    """The original's numData and invocation tree (bfr, nlevels) as preset values and as `sdsinf run`
    options; a tree that cannot hold the workers is refused naming the option."""
    import json

    from backend.core.errors import ConfigError
    from backend.sdsinf.runs import plan_from_preset
    from tests.test_cli import run as cli

    home = runs.ctx.home
    plan = plan_from_preset(home, "c1_1024n_8w_10000bs_queue")
    assert (plan.workers, plan.bfr, plan.nlevels, plan.num_data) == (8, 8, 1, 10000)
    # other workers than the preset's: its tree no longer applies, unless asked for
    plan = plan_from_preset(home, "c1_1024n_8w_10000bs_queue", workers=6, bfr=2)
    assert (plan.workers, plan.bfr, plan.nlevels) == (6, 2, None)
    assert plan_from_preset(home, "c1_1024n_8w_10000bs_queue", workers=4).bfr is None
    with pytest.raises(ConfigError, match=r"--levels 3: with --bfr 2, 6 worker\(s\) make a tree of 2 level"):
        runs.start(_plan("tree-cli", "queue", workers=6, bfr=2, nlevels=3))
    with pytest.raises(ConfigError, match=r"--bfr must be between 1 and the worker count \(4\), not 8"):
        runs.start(_plan("tree-cli", "queue", workers=4, bfr=8))
    info = generate(tmp_path / "gc", 1024, 4, 150, seed=51)
    runs.upload(tmp_path / "gc", 1024, 4, "tree-cli")
    ran = cli(
        home.root, "sdsinf", "run", "c1_1024n_8w_10000bs_queue", "--data", "tree-cli", "--workers", "6",
        "--bfr", "2", "--num-data", "100", "--json",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    summary = next(json.loads(line) for line in ran.stdout.splitlines() if '"summary"' in line)
    assert summary["inputs"] == 100 and summary["matches_truth"] is True and summary["workers"] == 6
    assert info["inputs"] == 150
    metrics = runs.show(summary["run_id"])["metrics"]
    assert (metrics["BFR"], metrics["NLEVELS"], metrics["TOTAL_NWORKERS"], metrics["NUM_DATA"]) == (
        "2",
        "2",
        "6",
        "100",
    )
    bad = cli(home.root, "sdsinf", "run", "c1_1024n_8w_10000bs_queue", "--data", "tree-cli", "--levels", "2")
    assert bad.returncode == 2 and "--levels 2: with --bfr 8, 8 worker(s) make a tree of 1 level(s)" in bad.stderr


def test_a_stack_deployed_before_the_shards_is_named_with_the_fix_and_nothing_is_made(
    runs: SdsinfRuns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.core.errors import ConfigError

    runs.ctx.stacks.deploy("sdsinf")
    generate(tmp_path / "gc", 1024, 2, 10, seed=61)
    runs.upload(tmp_path / "gc", 1024, 2, "old-stack")
    deployed = runs.ctx.stacks.outputs("sdsinf")
    older = {k: v for k, v in deployed.items() if k not in ("Shards", "BlockTopicArnPrefix", "CoordinationTopicArn")}
    monkeypatch.setattr(runs.ctx.stacks, "outputs", lambda short: older)
    sqs = runs.ctx.clients.client("sqs")
    before = sqs.list_queues().get("QueueUrls", [])
    with pytest.raises(ConfigError, match="predates sharded topics and buckets: skydeck stacks deploy sdsinf"):
        runs.start(_plan("old-stack", "queue", workers=2))
    assert sqs.list_queues().get("QueueUrls", []) == before


def test_a_run_cut_off_after_it_started_is_listed_then_failed_and_its_queues_removed(runs: SdsinfRuns) -> None:
    import json as jsonlib

    from lambda_src.sdsinf.direct import new_run_id

    # what `sdsinf run` leaves when the cloud is killed just after "started": the request, the queues
    run_id = new_run_id()
    bucket = runs.out["MetricsBucket"]
    event = {"run_id": run_id, "config": "c1_cut_off_queue", "variant": "queue", "workers": 2, "partition": "row"}
    runs.s3.put_object(Bucket=bucket, Key=f"runs/{run_id}/request.json", Body=jsonlib.dumps(event).encode())
    runs._make_queues(run_id, 2)
    sqs = runs.ctx.clients.client("sqs")
    prefix = runs.queue_prefix(run_id)
    assert len(sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])) == 2
    listed = {r.run_id: r for r in runs.runs()}
    assert listed[run_id].state == "RUNNING"
    assert runs.show(run_id)["state"] == "RUNNING"
    runs.orphaned_after_s = 0.0  # as if it had been silent for the usual 15 minutes
    try:
        listed = {r.run_id: r for r in runs.runs()}
    finally:
        runs.orphaned_after_s = SdsinfRuns.orphaned_after_s
    assert listed[run_id].state == "FAILED" and "orphaned" in (listed[run_id].error or "")
    assert sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []) == []
    shown = runs.show(run_id)
    assert shown["state"] == "FAILED" and "queues and subscriptions removed" in shown["error"]


def test_an_uploaded_dataset_becomes_runnable_only_when_its_last_file_is_in(runs: SdsinfRuns, tmp_path: Path) -> None:
    generate(tmp_path / "gc", 1024, 4, 20, seed=3)
    written: list[str] = []
    real_put = runs.s3.put_object

    def recording_put(**kwargs):  # noqa: ANN003, ANN202 - the real put, in the order it happens
        written.append(kwargs["Key"])
        return real_put(**kwargs)

    runs.s3.put_object = recording_put  # type: ignore[method-assign]
    try:
        runs.upload(tmp_path / "gc", 1024, 4, "ordered")
    finally:
        runs.s3.put_object = real_put  # type: ignore[method-assign]
    assert written[-1] == "ordered/network.npz" and "ordered/inputs.npz" in written[:-1]


def test_shapes_that_do_not_match_are_refused_naming_the_fix(runs: SdsinfRuns, tmp_path: Path) -> None:
    from backend.sdsinf.runs import plan_from_payload

    generate(tmp_path / "gc", 1024, 6, 20, seed=5)
    with pytest.raises(ConfigError, match="holds layers 1-6 only: pass --layers 6"):
        runs.upload(tmp_path / "gc", 1024, 30, "sixlayers")
    runs.upload(tmp_path / "gc", 1024, 6, "sixlayers")
    payload = Path(__file__).parent / "fixtures" / "sdsinf_payloads" / "b1_1024n_1w_10000bs_payload_serial.json"
    plan = plan_from_payload(payload, data="sixlayers")
    assert plan.layers not in (None, 6)
    with pytest.raises(ConfigError, match=rf"numLayers is {plan.layers}, but dataset 'sixlayers' has 6"):
        runs.start(plan)


def test_data_upload_takes_the_datas_own_depth_unless_told(runs: SdsinfRuns, tmp_path: Path) -> None:
    # a 6-layer set answered "--layers 120 asked for" when nobody asked: 120 was only the default
    from tests.test_cli import run as cli

    generate(tmp_path / "gc", 1024, 6, 20, seed=3)
    home = runs.ctx.home.root
    done = cli(home, "sdsinf", "data", "upload", "--data", str(tmp_path / "gc"), "--name", "six-deep")
    assert done.returncode == 0 and "1024 neurons x 6 layers" in done.stdout, done.stderr
    shallower = cli(home, "sdsinf", "data", "upload", "--data", str(tmp_path / "gc"), "--name", "four", "--layers", "4")
    assert shallower.returncode == 0 and "x 4 layers" in shallower.stdout, shallower.stderr
    deeper = cli(home, "sdsinf", "data", "upload", "--data", str(tmp_path / "gc"), "--name", "x", "--layers", "9")
    assert deeper.returncode != 0 and "--layers 9 asked for" in deeper.stderr and "--layers 6" in deeper.stderr


def test_a_run_followed_to_its_end_leaves_no_partials_or_live_files(runs: SdsinfRuns, tmp_path: Path) -> None:
    # an hour of runs left thousands of them (the local cloud's journal: 9,184 records, 258 MB), every one
    # replayed at each start, and listed by every `sdsinf runs`
    from backend.interface import Backend

    generate(tmp_path / "gc", 1024, 6, 60, seed=21)
    runs.upload(tmp_path / "gc", 1024, 6, "tidy")
    started = runs.start(_plan("tidy", "object", workers=3, config="t_1024n_3w_object"))
    seen: list[LiveMetric] = []
    summary = Backend(runs.ctx).follow_run(started.run_id, seen.append)
    assert summary.matches_truth is True and len(seen) == 3 * 6  # every layer was streamed first
    out = runs.out
    shards = Shards.from_outputs(out)
    assert not any(list(runs._keys(b, f"{started.run_id}/")) for b in [shards.intermediate_bucket, *shards.buckets])
    assert not list(runs._keys(out["MetricsBucket"], f"runs/{started.run_id}/live/"))
    assert runs.show(started.run_id)["metrics"]  # what the run measured stays
