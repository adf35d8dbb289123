"""Launch SDS-Inf runs on the deployed `sdsinf` stack and follow each worker's metrics live."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.core.errors import ConfigError, NotFoundError, SkydeckError
from backend.sdsinf.costs import estimate_cost
from backend.sdsinf.plans import RunLaunch, RunPlan
from backend.sdsinf.server_host import ServerHost
from lambda_src.keys import check_name
from lambda_src.sdsinf.contracts import LiveMetric, MalformedRecord, RunRequest, RunSummary
from lambda_src.sdsinf.diagnosis import WorkerFailure, explain, last_layers
from lambda_src.sdsinf.direct import new_run_id, run_request
from lambda_src.sdsinf.metrics import from_csv
from lambda_src.sdsinf.names import VARIANTS
from lambda_src.sdsinf.npz_codec import pack_matrix, pack_network
from lambda_src.sdsinf.payload import OriginalPayload, PayloadError, parse_payload, tree_depth
from lambda_src.sdsinf.run_queues import make_queues, queue_prefix, remove_queues
from lambda_src.sdsinf.shards import Shards
from lambda_src.sdsinf.stored import object_exists

if TYPE_CHECKING:
    from backend.context import Context
    from backend.core.paths import Home

RUN_TIMEOUT_S = 1800.0
FAILURE_CHECK_AFTER_S = 3.0  # no new metric for this long: look for workers' failure reports
ORPHANED_AFTER_S = 900.0  # an unfinished run that wrote nothing for this long was cut off
SUMMARY_GRACE_S = 15.0  # after a failure report, how long worker 0 has to write the run's summary


def config_for(preset: str, variant: str, workers: int, batch: int | None) -> str:
    """The run's config name, as the original names its runs (c1_1024n_8w_10000bs_queue): a preset's
    name with the worker count, batch size and variant this run really has, so that a serial preset run
    as a 2-worker queue run is listed as one."""
    parts = preset.split("_")
    for i, part in enumerate(parts):
        if re.fullmatch(r"\d+w", part):
            parts[i] = f"{workers}w"
        elif batch and re.fullmatch(r"\d+bs", part):
            parts[i] = f"{batch}bs"
    if parts[-1] in VARIANTS:
        parts[-1] = variant
    return "_".join(parts)


def _stored_request(run_id: str, body: bytes | None) -> RunRequest:
    """A run's request.json as its request, read for what it says (an older or partial one included);
    one that is missing or unreadable stands for a run known by its id alone."""
    core = {"run_id": run_id, "config": "", "model": {}, "inputs": {}, "metrics": {"prefix": f"runs/{run_id}"}}
    try:
        raw = json.loads(body) if body else None
        if isinstance(raw, dict):
            return RunRequest.from_event({**core, **raw})
    except (ValueError, TypeError):
        pass
    return RunRequest.from_event(core)


def read_payload(path: Path) -> OriginalPayload:
    """One of the original's payload files, read by the code the deployed coordinators read it with."""
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--payload {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"--payload {path}: not valid JSON ({exc})") from None
    try:
        return parse_payload(doc)
    except PayloadError as exc:
        raise ConfigError(str(exc)) from None


def plan_from_payload(
    path: Path, data: str | None = None, variant: str | None = None, server_mode: str = "job", wire: str | None = None
) -> RunPlan:
    """An original payload file as a run: its config name, workers, fan-out and batches (the original infers
    batchSize x numBatches inputs);
    the model and inputs from an uploaded dataset (by default named as the payload's weights folder)."""
    payload = read_payload(path)
    return RunPlan(
        preset=payload.config,
        data=data or payload.dataset_hint,
        variant=variant or payload.variant,
        workers=payload.total_nworkers,
        batch=payload.batch_size if payload.batch_size < payload.inputs else None,
        server_mode=server_mode,
        num_data=payload.inputs,  # as the original: batchSize x numBatches, whatever numData says
        bfr=payload.bfr,
        nlevels=payload.nlevels,
        neurons=payload.neurons,
        layers=payload.layers,
        wire=wire or "original",
        from_payload=True,
    )


def plan_from_preset(
    home: Home,
    preset: str,
    variant: str | None = None,
    workers: int | None = None,
    data: str | None = None,
    batch: int | None = None,
    partition: str | None = None,
    server_mode: str = "job",
    num_data: int | None = None,
    bfr: int | None = None,
    nlevels: int | None = None,
    wire: str | None = None,
) -> RunPlan:
    """The one place a preset becomes a run: each choice left as None takes the preset's value
    (`num_data`, `bfr` and `nlevels` are the original payload's numData and invocation tree)."""
    from backend.core.presets import get_preset

    chosen = get_preset(home, preset)
    if chosen.kind != "sdsinf":
        raise ConfigError(f"preset {chosen.name} is a {chosen.kind} preset, not an sdsinf run")
    values = chosen.values
    same_workers = workers is None or workers == int(values.get("workers", 1))
    return RunPlan(
        preset=chosen.name,
        data=data or str(values.get("data", "")),
        variant=variant or str(values.get("variant", "serial")),
        workers=workers or int(values.get("workers", 1)),
        batch=batch or values.get("batch"),
        partition=partition or str(values.get("partition", "row")),
        server_mode=server_mode,
        num_data=num_data or _optional_int(values, "num_data", chosen.name),
        # the preset's tree is shaped for its own worker count: other workers, a flat tree unless asked
        bfr=bfr or (_optional_int(values, "bfr", chosen.name) if same_workers else None),
        nlevels=nlevels or (_optional_int(values, "nlevels", chosen.name) if same_workers else None),
        wire=wire or str(values.get("wire", "original")),
    )


def _optional_int(values: dict[str, Any], key: str, preset: str) -> int | None:
    raw = values.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigError(f"preset {preset}: values.{key} must be a positive integer, not {raw!r}")
    return raw


class SdsinfRuns:
    """Upload data, start runs and follow them, and clear a Queue run's queues when it ends; the
    Server baseline's hosts are their own object (`server`)."""

    orphaned_after_s = ORPHANED_AFTER_S

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.s3 = ctx.clients.client("s3")
        self.server = ServerHost(ctx)

    @property
    def out(self) -> dict[str, str]:
        return self.ctx.stacks.outputs("sdsinf")

    # -- the Queue variant's per-run queues (lambda_src.sdsinf.run_queues makes and removes them) ----
    def queue_prefix(self, run_id: str) -> str:
        return queue_prefix(self.out["QueuePrefix"], run_id)

    def _make_queues(self, run_id: str, workers: int) -> list[str]:
        shards = Shards.from_outputs(self.out)
        sqs, sns = self.ctx.clients.client("sqs"), self.ctx.clients.client("sns")
        prefix = self.queue_prefix(run_id)
        return make_queues(sqs, sns, shards.topics, shards.coordination_topic, prefix, run_id, workers)

    def ended(self, run_id: str) -> bool:
        """Whether the run has its summary (written last, by worker 0 or by a follower that failed it)."""
        return self._maybe(self.out["MetricsBucket"], f"runs/{run_id}/summary.json") is not None

    def cleanup_transients(self, run_id: str) -> int:
        """Once a run has ended and been followed: its live per-layer files (the stream is over; the
        summary, metrics and layer stats hold what they said) and its Object partials (read once, and
        on AWS expired after a day anyway). Left, they make every later listing - and the local cloud's
        start-up, which replays each of thousands of small writes - slower for nothing. Returns the
        objects removed."""
        out = self.out
        places = [(out["MetricsBucket"], f"runs/{run_id}/live/")]
        if "Shards" in out:
            intermediate = Shards.from_outputs(out).intermediate()
            places += [(b, f"{run_id}/") for b in [intermediate["bucket"], *intermediate["buckets"]]]
        removed = 0
        for bucket, prefix in places:
            keys = list(self._keys(bucket, prefix))
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                removed += len(batch)
        return removed

    def cleanup_queues(self, run_id: str) -> int:
        """Remove a Queue run's subscriptions and queues (after it ends, either way). Returns queues removed."""
        out = self.out
        if "Shards" not in out:
            return 0
        shards = Shards.from_outputs(out)
        sqs, sns = self.ctx.clients.client("sqs"), self.ctx.clients.client("sns")
        return remove_queues(sqs, sns, [*shards.topics, shards.coordination_topic], self.queue_prefix(run_id))

    def upload(self, data: Path, neurons: int, layers: int | None, name: str) -> dict[str, Any]:
        """Convert a Graph Challenge directory to npz and put it in the stack's buckets under `name`;
        `layers` None takes every layer the directory holds (the data says how deep it is)."""
        from backend.sdsinf.data import load_dataset
        from lambda_src.sdsinf.graphchallenge import layers_present

        try:
            check_name("dataset", name)
        except ValueError as exc:
            raise ConfigError(f"--name: {exc}") from None
        if layers is None:
            layers = layers_present(Path(data), neurons)
            if not layers:
                raise ConfigError(f"--data {data}: no neuron{neurons}/n{neurons}-l1.tsv; is --neurons right?")

        net, y, truth = load_dataset(data, neurons, layers)
        out = self.out
        # the network is what makes a dataset runnable (runs and payloads look for it), so it goes last,
        # and an older one goes first: an upload cut off midway leaves a dataset no run takes for whole
        self.s3.delete_object(Bucket=out["WeightsBucket"], Key=f"{name}/network.npz")
        shape = {"neurons": neurons, "layers": len(net.layers), "inputs": int(y.shape[0])}
        self.s3.put_object(Bucket=out["WeightsBucket"], Key=f"{name}/meta.json", Body=json.dumps(shape).encode())
        self.s3.put_object(Bucket=out["InferenceBucket"], Key=f"{name}/inputs.npz", Body=pack_matrix(y))
        if truth is not None:
            body = "".join(f"{i}\n" for i in truth)
            self.s3.put_object(Bucket=out["InferenceBucket"], Key=f"{name}/truth.tsv", Body=body)
        else:
            self.s3.delete_object(Bucket=out["InferenceBucket"], Key=f"{name}/truth.tsv")
        self.s3.put_object(Bucket=out["WeightsBucket"], Key=f"{name}/network.npz", Body=pack_network(net))
        return {
            "name": name,
            "neurons": neurons,
            "layers": layers,
            "inputs": int(y.shape[0]),
            "truth": truth is not None,
        }

    def start(self, plan: RunPlan) -> RunLaunch:
        """Start the run a plan decides - the one way in: a preset or an original payload becomes a
        RunPlan first (plan_from_preset, plan_from_payload). A plan naming a model shape (a payload's
        numNeurons and numLayers) is refused when the uploaded dataset differs."""
        data_name, variant, batch, workers = plan.data, plan.variant, plan.batch, plan.workers
        config, partition, server_mode, wire = plan.preset or None, plan.partition, plan.server_mode, plan.wire
        bfr, nlevels, num_data, expect = plan.bfr, plan.nlevels, plan.num_data, (plan.neurons, plan.layers)
        from lambda_src.sdsinf.names import WIRES
        from lambda_src.sdsinf.partition import PARTITIONS

        if partition not in PARTITIONS:
            raise ConfigError(f"--partition must be one of {', '.join(PARTITIONS)}, not {partition!r}")
        if variant not in VARIANTS:
            raise ConfigError(f"--variant {variant}: this build runs {', '.join(VARIANTS)}")
        if wire not in WIRES:
            raise ConfigError(f"--wire must be one of {', '.join(WIRES)}, not {wire!r}")
        if variant in ("serial", "server"):
            workers, bfr, nlevels = 1, None, None  # one worker: no tree to shape
        if not 1 <= workers <= 256:
            raise ConfigError(f"--workers must be between 1 and 256, not {workers}")
        fan_out = bfr or workers
        if not 1 <= fan_out <= workers:
            raise ConfigError(f"--bfr must be between 1 and the worker count ({workers}), not {fan_out}")
        depth = tree_depth(fan_out, workers)
        if nlevels is not None and nlevels != depth:
            raise ConfigError(
                f"--levels {nlevels}: with --bfr {fan_out}, {workers} worker(s) make a tree of {depth} level(s) "
                f"(bfr + bfr^2 + ... >= workers); leave --levels out or change --bfr"
            )
        out = self.out
        if not object_exists(self.s3, out["WeightsBucket"], f"{data_name}/network.npz"):
            hint = f"skydeck sdsinf data upload --data DIR --name {data_name}"
            raise NotFoundError(f"no uploaded model named {data_name!r}; upload one: {hint}")
        self._check_shape(data_name, *expect)
        run_id = new_run_id()
        request = run_request(
            run_id,
            (config if plan.from_payload else config_for(config, variant, workers, batch))
            if config
            else f"{data_name}_{variant}",
            data_name,
            out["WeightsBucket"], out["InferenceBucket"], out["MetricsBucket"],
            has_truth=object_exists(self.s3, out["InferenceBucket"], f"{data_name}/truth.tsv"),
            model_params={**({"batchSize": batch} if batch else {}), **({"numData": num_data} if num_data else {})},
            invoc_params={"bfr": fan_out, "nlevels": depth, "total_nworkers": workers},
            partition=partition,
        )  # fmt: skip
        request = replace(request, variant=variant, workers=workers, wire=wire)
        prefix = request.prefix
        # recorded before anything is made for it (its parts, its queues): a run cut off from here on is
        # listed, and found orphaned, failed and cleaned up by `sdsinf runs`
        self.s3.put_object(Bucket=out["MetricsBucket"], Key=f"{prefix}/request.json", Body=request.to_json())
        function = out["SerialFunction"]
        if variant in ("object", "queue"):
            if "Shards" not in out:  # checked before anything is made for the run
                raise ConfigError(
                    "the deployed sdsinf stack predates sharded topics and buckets: skydeck stacks deploy sdsinf"
                )
            function = out[f"{variant.capitalize()}CoordinatorFunction"]
            request = replace(
                request,
                parts=self.parts(data_name, partition, workers),
                worker_function=out[f"{variant.capitalize()}WorkerFunction"],
                poll_timeout_s=plan.poll_timeout_s,
                **self.transport(variant, run_id, workers),
            )
        self.s3.put_object(Bucket=out["MetricsBucket"], Key=f"{prefix}/request.json", Body=request.to_json())
        extra: dict[str, Any] = {}
        if server_mode not in ("job", "service"):
            raise ConfigError(f"--server must be job or service, not {server_mode!r}")
        if variant == "server" and server_mode == "service":
            if "ServerRequestsQueueUrl" not in out:
                raise ConfigError(
                    "the deployed sdsinf stack has no server-requests queue: skydeck stacks deploy sdsinf"
                )
            message = {"request": f"s3://{out['MetricsBucket']}/{prefix}/request.json"}
            self.ctx.clients.client("sqs").send_message(
                QueueUrl=out["ServerRequestsQueueUrl"], MessageBody=json.dumps(message)
            )
            extra["server"] = "service"
        elif variant == "server" and self.ctx.profile.is_local:
            self.server.start_local(f"s3://{out['MetricsBucket']}/{prefix}/request.json")
        elif variant == "server":
            extra["instance_id"] = self.server.launch_instance(
                run_id, f"s3://{out['MetricsBucket']}/{prefix}/request.json"
            )
        else:
            self.ctx.clients.client("lambda").invoke(
                FunctionName=function, InvocationType="Event", Payload=request.to_json().encode()
            )
        return RunLaunch(run_id, variant, data_name, prefix, workers, **extra)

    def transport(self, variant: str, run_id: str, workers: int) -> dict[str, Any]:
        """A distributed run's event entry for its transport: the shard buckets (Object), or the run's
        own queues, made now, on the stack's topics (Queue)."""
        out = self.out
        shards = Shards.from_outputs(out)
        if variant == "object":
            return {"intermediate": shards.intermediate()}
        return {"queue": shards.queue(out["EmptyTargetsTable"], self._make_queues(run_id, workers))}

    def parts(self, data_name: str, partition: str, workers: int) -> dict[str, Any]:
        """The dataset cut into one set of files per worker for this partition and worker count (each
        worker reads only its own), made once and kept beside the dataset (lambda_src.sdsinf.partition_files)."""
        from lambda_src.sdsinf.partition_files import prepare

        out = self.out
        buckets = {
            "weights": out["WeightsBucket"],
            "inputs": out["InferenceBucket"],
            "connectivity": out["ConnectivityBucket"],
        }
        return prepare(self.s3, buckets, data_name, partition, workers)

    def follow(
        self,
        run_id: str,
        on_metric: Callable[[LiveMetric], None] | None = None,
        timeout_s: float = RUN_TIMEOUT_S,
        idle_timeout_s: float = 120.0,
    ) -> RunSummary:
        """Stream each worker's per-layer metrics as they land; return the summary at the end.
        A run that stops producing metrics for `idle_timeout_s` fails instead of hanging."""
        bucket, prefix = self.out["MetricsBucket"], f"runs/{run_id}"
        request = _stored_request(run_id, self._maybe(bucket, f"{prefix}/request.json"))
        total = int(request.invoc_params.get("total_nworkers", 1))
        seen: set[str] = set()
        started = last_progress = time.time()
        first_failure: float | None = None

        def drain() -> None:
            nonlocal last_progress
            for key in sorted(self._keys(bucket, f"{prefix}/live/")):
                if key in seen:
                    continue
                seen.add(key)
                last_progress = time.time()
                if on_metric:
                    on_metric(LiveMetric.from_dict(json.loads(self._get(bucket, key))))

        def diagnosis() -> str:
            keys = list(self._keys(bucket, f"{prefix}/workers/"))
            failures = [WorkerFailure.from_dict(json.loads(self._get(bucket, k))) for k in keys if "/failed-" in k]
            done = {int(k.rsplit("-", 1)[1].removesuffix(".json")) for k in keys if "/done-" in k}
            return explain(total, failures, done, last_layers(seen))

        while True:
            drain()
            summary = self._maybe(bucket, f"{prefix}/summary.json")
            if summary is not None:
                drain()  # metrics written between the listing and the summary still count
                try:
                    result = RunSummary.read(summary, f"{prefix}/summary.json")
                except MalformedRecord as exc:
                    raise SkydeckError(f"run {run_id} ended with a summary that does not read: {exc}") from None
                if result.variant == "queue":
                    self.cleanup_queues(run_id)
                if result.failed:
                    raise SkydeckError(f"run {run_id} failed: {result.error}")
                return result.with_extra(**estimate_cost(result.to_dict()))
            now = time.time()
            # worker 0 writes the summary; if it is the one that died, nobody will: look for ourselves
            quiet = now - last_progress > FAILURE_CHECK_AFTER_S and first_failure is None
            if quiet and any("/failed-" in k for k in self._keys(bucket, f"{prefix}/workers/")):
                first_failure = now
            if first_failure is not None and now - first_failure > SUMMARY_GRACE_S:
                self.cleanup_queues(run_id)
                error = diagnosis()
                self._record_failure(run_id, request, error)
                raise SkydeckError(f"run {run_id} failed: {error}")
            if now - started > timeout_s or now - last_progress > idle_timeout_s:
                self.cleanup_queues(run_id)
                error = f"made no progress for {now - last_progress:.0f}s: {diagnosis()}"
                self._record_failure(run_id, request, error)
                raise SkydeckError(f"run {run_id} {error}; see the function's log: skydeck console -> Logs")
            time.sleep(0.3)

    def runs(self) -> list[RunSummary]:
        """Every run, newest first: finished ones from their summary, unfinished ones as RUNNING - or, once
        nothing has been written for a run in ORPHANED_AFTER_S (its client or the cloud was cut off), failed
        now, with their queues and subscriptions removed."""
        bucket = self.out["MetricsBucket"]
        summaries: list[str] = []
        requests: dict[str, str] = {}
        last_write: dict[str, float] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="runs/"):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                run_id = key.split("/", 2)[1]
                last_write[run_id] = max(last_write.get(run_id, 0.0), obj["LastModified"].timestamp())
                if key.endswith("/summary.json"):
                    summaries.append(key)
                elif key == f"runs/{run_id}/request.json":
                    requests[run_id] = key
        found = [self._summary(bucket, key) for key in summaries]
        ended = {s.run_id for s in found}
        for run_id, key in requests.items():
            if run_id in ended:
                continue
            found.append(self._unfinished(run_id, _stored_request(run_id, self._get(bucket, key)), last_write[run_id]))
        return sorted(found, key=lambda r: r.run_id, reverse=True)

    def _summary(self, bucket: str, key: str) -> RunSummary:
        """A listed run's summary; one that does not read is listed as MALFORMED, with what is wrong, so
        that the rest of the listing still shows."""
        try:
            return RunSummary.read(self._get(bucket, key), key)
        except MalformedRecord as exc:
            return RunSummary(run_id=key.split("/", 2)[1], config="?", variant="?", state="MALFORMED", error=str(exc))

    def _check_shape(self, data_name: str, neurons: int | None, layers: int | None) -> None:
        """A payload names its model's shape; a dataset of another shape would run and answer for the
        wrong network. (Datasets uploaded before their shape was recorded are not checked.)"""
        if neurons is None and layers is None:
            return
        raw = self._maybe(self.out["WeightsBucket"], f"{data_name}/meta.json")
        if raw is None:
            return
        shape = json.loads(raw)
        checks = (("numNeurons", neurons, shape.get("neurons")), ("numLayers", layers, shape.get("layers")))
        for field, wanted, have in checks:
            if wanted is not None and have is not None and int(wanted) != int(have):
                raise ConfigError(
                    f"payload: model_params.{field} is {wanted}, but dataset {data_name!r} has {have}; "
                    f"upload a dataset of that shape (skydeck sdsinf data upload ... --name NAME) and pass "
                    "--data NAME, or use a payload made for this one"
                )

    def _record_failure(self, run_id: str, request: RunRequest, error: str) -> None:
        """The run's summary, FAILED with what the client found, when no worker lived to write one:
        `runs` and `show` then say why instead of RUNNING."""
        bucket, key = self.out["MetricsBucket"], f"runs/{run_id}/summary.json"
        if self._maybe(bucket, key) is not None:
            return
        run = self._unfinished_summary(run_id, request)
        failed = RunSummary(**{**run.to_dict(), "state": "FAILED", "error": error})
        self.s3.put_object(Bucket=bucket, Key=key, Body=failed.to_json().encode())

    @staticmethod
    def _unfinished_summary(run_id: str, request: RunRequest) -> RunSummary:
        variant = request.variant or ("queue" if request.queue is not None else "serial")
        return RunSummary(
            run_id=run_id, config=request.config, variant=variant, state="RUNNING",
            workers=int(request.workers or request.invoc_params.get("total_nworkers") or 1),
            partition=request.partition,
        )  # fmt: skip

    def _unfinished(self, run_id: str, request: RunRequest, last_write: float) -> RunSummary:
        run = self._unfinished_summary(run_id, request)
        variant = run.variant
        silent = time.time() - last_write
        if silent < self.orphaned_after_s:
            return run
        # cut off: nothing will finish it, so it is failed here and what it holds is let go
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_write))
        failed = RunSummary(
            **{**run.to_dict(), "state": "FAILED", "error": (
                f"orphaned: nothing written since {when} ({silent / 60:.0f} min); its client or the cloud was "
                "cut off. Marked failed, and its queues and subscriptions removed"
            )}
        )  # fmt: skip
        if variant == "queue":
            self.cleanup_queues(run_id)
        self.s3.put_object(
            Bucket=self.out["MetricsBucket"], Key=f"runs/{run_id}/summary.json", Body=failed.to_json().encode()
        )
        return failed

    def resolve(self, run_id: str) -> str:
        """A run id from any unique prefix of one (the run's time stamp is enough, usually), or from the
        unique end of one (its random suffix), as job ids are taken."""
        bucket = self.out["MetricsBucket"]
        resp = self.s3.list_objects_v2(Bucket=bucket, Prefix=f"runs/{run_id}", Delimiter="/")
        found = sorted(p["Prefix"][len("runs/") :].rstrip("/") for p in resp.get("CommonPrefixes", []))
        if run_id in found:
            return run_id
        if not found and run_id:
            every: list[str] = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="runs/", Delimiter="/"):
                every += [p["Prefix"][len("runs/") :].rstrip("/") for p in page.get("CommonPrefixes", [])]
            found = sorted(r for r in every if r.endswith(run_id))
        if not found:
            return run_id
        if len(found) > 1:
            raise ConfigError(
                f"run id {run_id!r} is ambiguous: {len(found)} runs start with it ({', '.join(found[:6])})"
            )
        return found[0]

    def show(self, run_id: str) -> dict[str, Any]:
        run_id = self.resolve(run_id)
        bucket, prefix = self.out["MetricsBucket"], f"runs/{run_id}"
        summary = self._maybe(bucket, f"{prefix}/summary.json")
        if summary is None and self._maybe(bucket, f"{prefix}/request.json") is not None:
            listed = next((r for r in self.runs() if r.run_id == run_id), None)  # fails it if orphaned
            if listed is not None and not listed.failed:
                return {**listed.to_dict(), "metrics": {}, "files": []}
            summary = self._maybe(bucket, f"{prefix}/summary.json")
        if summary is None:
            raise NotFoundError(f"no run {run_id!r}; list them with: skydeck sdsinf runs")
        try:
            RunSummary.read(summary, f"{prefix}/summary.json")
        except MalformedRecord as exc:
            raise SkydeckError(f"run {run_id} cannot be shown: {exc}") from None
        # a failed run has a summary with its error and no metrics file
        raw = self._maybe(bucket, f"{prefix}/metrics.csv")
        metrics = from_csv(raw.decode("utf-8", "replace")) if raw is not None else []
        return {
            **json.loads(summary),
            "metrics": metrics[0] if metrics else {},
            "files": sorted(k.rsplit("/", 1)[-1] for k in self._keys(bucket, prefix + "/") if "/live/" not in k),
        }

    def _keys(self, bucket: str, prefix: str) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def _get(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def _maybe(self, bucket: str, key: str) -> bytes | None:
        try:
            return self._get(bucket, key)
        except self.s3.exceptions.NoSuchKey:
            return None
