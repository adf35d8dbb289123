"""Launch SDS-Inf runs on the deployed `sdsinf` stack and follow each worker's metrics live."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.errors import ConfigError, NotFoundError, SkydeckError
from lambda_src.sdsinf.metrics import from_csv
from lambda_src.sdsinf.store import pack_matrix, pack_network

if TYPE_CHECKING:
    from backend.context import Context

VARIANTS = ("queue", "object", "serial", "server")
RUN_TIMEOUT_S = 1800.0
# AWS Lambda on-demand prices, x86, us-east-1 (published 2024): per GB-second and per request.
PRICE_GB_S = 0.0000166667
PRICE_REQUEST = 0.20 / 1_000_000
DEFAULT_MEMORY_MB = 3008  # the sdsinf stack's FnMemory default


def estimate_cost(summary: dict[str, Any], memory_mb: int = DEFAULT_MEMORY_MB) -> dict[str, float]:
    """What the run would cost on Lambda: every worker billed for the run's wall time (an upper
    bound: workers that finish early stop billing), plus one request a worker and the coordinator."""
    workers = int(summary.get("workers", 1))
    gb_s = float(summary.get("runtime_s", 0.0)) * workers * memory_mb / 1024
    requests = workers + (1 if summary.get("variant") in ("object", "queue") else 0)
    if summary.get("variant") == "server":
        return {"gb_seconds": 0.0, "requests": 0, "cost_usd": 0.0}
    return {
        "gb_seconds": round(gb_s, 3),
        "requests": requests,
        "cost_usd": round(gb_s * PRICE_GB_S + requests * PRICE_REQUEST, 6),
    }


def median_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The original reports medians over repeated runs (3 by default)."""
    import statistics

    keys = ("runtime_s", "compute_s", "edges_per_s", "cost_usd")
    return {k: statistics.median(float(s.get(k, 0.0)) for s in summaries) for k in keys} | {
        "runs": [s["run_id"] for s in summaries],
        "all_match_truth": all(s.get("matches_truth") is not False for s in summaries),
    }


class SdsinfRuns:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.s3 = ctx.clients.client("s3")

    @property
    def out(self) -> dict[str, str]:
        return self.ctx.stacks.outputs("sdsinf")

    def upload(self, data: Path, neurons: int, layers: int, name: str) -> dict[str, Any]:
        """Convert a Graph Challenge directory to npz and put it in the stack's buckets under `name`."""
        from backend.sdsinf import load_dataset

        net, y, truth = load_dataset(data, neurons, layers)
        out = self.out
        self.s3.put_object(Bucket=out["WeightsBucket"], Key=f"{name}/network.npz", Body=pack_network(net))
        self.s3.put_object(Bucket=out["InferenceBucket"], Key=f"{name}/inputs.npz", Body=pack_matrix(y))
        if truth is not None:
            body = "".join(f"{i}\n" for i in truth)
            self.s3.put_object(Bucket=out["InferenceBucket"], Key=f"{name}/truth.tsv", Body=body)
        return {
            "name": name,
            "neurons": neurons,
            "layers": layers,
            "inputs": int(y.shape[0]),
            "truth": truth is not None,
        }

    def start(
        self,
        data_name: str,
        variant: str,
        batch: int | None = None,
        config: str | None = None,
        workers: int = 1,
        bfr: int | None = None,
        poll_timeout_s: float = 60.0,
        partition: str = "row",
        server_mode: str = "job",
    ) -> dict[str, Any]:
        from lambda_src.sdsinf.partition import PARTITIONS

        if partition not in PARTITIONS:
            raise ConfigError(f"--partition must be one of {', '.join(PARTITIONS)}, not {partition!r}")
        if variant not in VARIANTS:
            raise ConfigError(f"--variant {variant}: this build runs {', '.join(VARIANTS)}")
        if variant in ("serial", "server"):
            workers = 1
        if not 1 <= workers <= 256:
            raise ConfigError(f"--workers must be between 1 and 256, not {workers}")
        out = self.out
        try:
            self.s3.head_object(Bucket=out["WeightsBucket"], Key=f"{data_name}/network.npz")
        except Exception:  # noqa: BLE001 - any failure here means the model is not there
            hint = f"skydeck sdsinf data upload --data DIR --name {data_name}"
            raise NotFoundError(f"no uploaded model named {data_name!r}; upload one: {hint}") from None
        has_truth = True
        try:
            self.s3.head_object(Bucket=out["InferenceBucket"], Key=f"{data_name}/truth.tsv")
        except Exception:  # noqa: BLE001
            has_truth = False
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        prefix = f"runs/{run_id}"
        event = {
            "run_id": run_id,
            "config": config or f"{data_name}_{variant}",
            "model": {"bucket": out["WeightsBucket"], "key": f"{data_name}/network.npz"},
            "inputs": {"bucket": out["InferenceBucket"], "key": f"{data_name}/inputs.npz"},
            "truth": {"bucket": out["InferenceBucket"], "key": f"{data_name}/truth.tsv"} if has_truth else None,
            "metrics": {"bucket": out["MetricsBucket"], "prefix": prefix},
            "partition": partition,
            "model_params": {"batchSize": batch} if batch else {},
            "invoc_params": {
                "bfr": bfr or workers,
                "nlevels": 1 if (bfr or workers) >= workers else 2,
                "total_nworkers": workers,
            },
        }
        if variant in ("queue", "object") and "ConnectivityBucket" in out:
            event["connectivity"] = self.connectivity(data_name, partition, workers)
        function = out["SerialFunction"]
        if variant == "object":
            function = out["ObjectCoordinatorFunction"]
            event.update(
                worker_function=out["ObjectWorkerFunction"],
                poll_timeout_s=poll_timeout_s,
                intermediate={"bucket": out["IntermediateBucket"]},
            )
        if variant == "queue":
            if "QueueCoordinatorFunction" not in out:
                raise ConfigError("the deployed sdsinf stack predates the Queue variant: skydeck stacks deploy sdsinf")
            function = out["QueueCoordinatorFunction"]
            event.update(
                worker_function=out["QueueWorkerFunction"],
                poll_timeout_s=poll_timeout_s,
                queue={
                    "topic_arn": out["QueueTopicArn"],
                    "table": out["EmptyTargetsTable"],
                    "queue_urls": self._make_queues(run_id, workers),
                },
            )
        self.s3.put_object(Bucket=out["MetricsBucket"], Key=f"{prefix}/request.json", Body=json.dumps(event))
        extra: dict[str, Any] = {}
        if server_mode not in ("job", "service"):
            raise ConfigError(f"--server must be job or service, not {server_mode!r}")
        if variant == "server" and server_mode == "service":
            if "ServerRequestsQueueUrl" not in out:
                raise ConfigError(
                    "the deployed sdsinf stack has no server-requests queue: skydeck stacks deploy sdsinf"
                )
            request = {"request": f"s3://{out['MetricsBucket']}/{prefix}/request.json"}
            self.ctx.clients.client("sqs").send_message(
                QueueUrl=out["ServerRequestsQueueUrl"], MessageBody=json.dumps(request)
            )
            extra["server"] = "service"
        elif variant == "server" and self.ctx.profile.is_local:
            self._start_server(f"s3://{out['MetricsBucket']}/{prefix}/request.json")
        elif variant == "server":
            extra["instance_id"] = self.launch_server_instance(
                run_id, f"s3://{out['MetricsBucket']}/{prefix}/request.json"
            )
        else:
            self.ctx.clients.client("lambda").invoke(
                FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
            )
        return {"run_id": run_id, "variant": variant, "data": data_name, "prefix": prefix, "workers": workers, **extra}

    def connectivity(self, data_name: str, partition: str, workers: int) -> dict[str, str]:
        """The partition (owners per layer) for this data and worker count, computed once and kept in
        the connectivity bucket; keyed by the network's ETag, so a re-upload never reuses a stale one."""
        import io

        import numpy as np

        from lambda_src.sdsinf.partition import make_partition
        from lambda_src.sdsinf.store import unpack_network

        out = self.out
        etag = self.s3.head_object(Bucket=out["WeightsBucket"], Key=f"{data_name}/network.npz")["ETag"].strip('"')
        key = f"{data_name}/{etag}/{partition}-{workers}w.npz"
        where = {"bucket": out["ConnectivityBucket"], "key": key}
        try:
            self.s3.head_object(Bucket=where["bucket"], Key=key)
            return where
        except Exception:  # noqa: BLE001 - not there yet: compute it
            pass
        net = unpack_network(self._get(out["WeightsBucket"], f"{data_name}/network.npz"))
        owners = np.stack(make_partition(partition, net.layers, workers)).astype(np.int32)
        buf = io.BytesIO()
        np.savez_compressed(buf, owners=owners)
        self.s3.put_object(Bucket=where["bucket"], Key=key, Body=buf.getvalue())
        return where

    # -- the Queue variant's per-run queues -------------------------------------------------------------
    def _queue_prefix(self, run_id: str) -> str:
        return f"{self.out['QueuePrefix']}-{run_id[-6:]}-"

    def _make_queues(self, run_id: str, workers: int) -> list[str]:
        """One queue per worker for this run, subscribed to the topic with a filter on run and target.

        Fresh queues per run: a rerun can never receive a failed run's messages."""
        sqs, sns = self.ctx.clients.client("sqs"), self.ctx.clients.client("sns")
        topic = self.out["QueueTopicArn"]
        urls = []
        for k in range(workers):
            name = f"{self._queue_prefix(run_id)}w{k:04d}"
            url = sqs.create_queue(
                QueueName=name, Attributes={"SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "3600"}
            )["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                    }
                ],
            }
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
            sns.subscribe(
                TopicArn=topic,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={
                    "FilterPolicy": json.dumps({"run": [run_id], "target": [str(k)]}),
                    "RawMessageDelivery": "true",
                },
            )
            urls.append(url)
        return urls

    def cleanup(self, run_id: str) -> int:
        """Remove a Queue run's subscriptions and queues (after it ends, either way). Returns queues removed."""
        out = self.out
        if "QueueTopicArn" not in out:
            return 0
        sqs, sns = self.ctx.clients.client("sqs"), self.ctx.clients.client("sns")
        prefix = self._queue_prefix(run_id)
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=out["QueueTopicArn"]):
            for sub in page.get("Subscriptions", []):
                if sub.get("Endpoint", "").rsplit(":", 1)[-1].startswith(prefix):
                    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
        for url in urls:
            sqs.delete_queue(QueueUrl=url)
        return len(urls)

    def _install_lines(self) -> list[str]:
        """Shell lines that install the run code and its numpy/scipy in /opt/sdsinf on a Server instance."""
        out = self.out
        code = f"s3://{out['CodeBucket']}/{out['CodeKey']}"
        return [
            "python3 -m venv /opt/sdsinf && /opt/sdsinf/bin/pip install --quiet boto3 numpy scipy",
            f"aws s3 cp {shlex.quote(code)} /opt/sdsinf/code.zip",
            "/opt/sdsinf/bin/python -m zipfile -e /opt/sdsinf/code.zip /opt/sdsinf/app",
        ]

    def server_user_data(self, request_uri: str) -> str:
        """The job-scoped Server: install, run one request, power off (the template terminates on shutdown)."""
        out = self.out
        if "ServerLaunchTemplateId" not in out:
            raise ConfigError(
                "the deployed sdsinf stack predates the Server launch template: skydeck stacks deploy sdsinf"
            )
        run_id = request_uri.rstrip("/").split("/")[-2]
        log = f"s3://{out['ServerResourcesBucket']}/logs/{run_id}.log"
        return "\n".join(
            [
                "#!/bin/bash",
                "# skydeck SDS-Inf Server baseline: one run, then this instance terminates itself.",
                "set -uxo pipefail",
                # whatever happens, keep the log (the instance is gone after) and power off
                f"trap 'aws s3 cp /var/log/cloud-init-output.log {shlex.quote(log)} || true; shutdown -h now' EXIT",
                *self._install_lines(),
                "cd /opt/sdsinf/app",
                f"/opt/sdsinf/bin/python -m lambda_src.sdsinf.server --event-s3 {shlex.quote(request_uri)}",
                "",
            ]
        )

    def launch_server_instance(self, run_id: str, request_uri: str) -> str:
        """Start the Server baseline on EC2 from the stack's launch template; returns the instance id."""
        ec2 = self.ctx.clients.client("ec2")
        resp = ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": self.out["ServerLaunchTemplateId"], "Version": "$Latest"},
            MinCount=1,
            MaxCount=1,
            UserData=self.server_user_data(request_uri),
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "skydeck:sdsinf-run", "Value": run_id}]}],
        )
        return resp["Instances"][0]["InstanceId"]

    # -- the always-on Server ----------------------------------------------------------------------
    @property
    def _service_file(self) -> Path:
        return self.ctx.home.local_dir / "sdsinf-server.json"

    def server_status(self) -> dict[str, Any]:
        """Where the always-on server runs: a local process (local cloud) or EC2 instances (AWS)."""
        if self.ctx.profile.is_local:
            import os

            try:
                info = json.loads(self._service_file.read_text())
                os.kill(int(info["pid"]), 0)
                return {"running": True, "where": "local process", **info}
            except (OSError, ValueError, KeyError):
                return {"running": False, "where": "local process"}
        ec2 = self.ctx.clients.client("ec2")
        filters = [
            {"Name": "tag:skydeck:sdsinf-server", "Values": [self.ctx.profile.stack_name("sdsinf")]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
        found = [
            i["InstanceId"] for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]
        ]
        return {"running": bool(found), "where": "EC2", "instances": found}

    def server_up(self) -> dict[str, Any]:
        status = self.server_status()
        if status["running"]:
            return status
        out = self.out
        if "ServerRequestsQueueUrl" not in out:
            raise ConfigError("the deployed sdsinf stack has no server-requests queue: skydeck stacks deploy sdsinf")
        queue = out["ServerRequestsQueueUrl"]
        if self.ctx.profile.is_local:
            import os
            import subprocess
            import sys

            log_dir = self.ctx.home.logs_dir / "executor"
            log_dir.mkdir(parents=True, exist_ok=True)
            with open(log_dir / "sdsinf-server-service.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "lambda_src.sdsinf.server", "--serve", queue, "--wait", "2"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    env={**os.environ, **self.ctx.clients.env()},
                )
            self._service_file.write_text(json.dumps({"pid": proc.pid, "queue": queue}))
            return self.server_status()
        ec2 = self.ctx.clients.client("ec2")
        resp = ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": out["ServerLaunchTemplateId"], "Version": "$Latest"},
            MinCount=1,
            MaxCount=1,
            UserData=self.service_user_data(queue),
            InstanceInitiatedShutdownBehavior="stop",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "skydeck:sdsinf-server", "Value": self.ctx.profile.stack_name("sdsinf")}],
                }
            ],
        )
        return {"running": True, "where": "EC2", "instances": [resp["Instances"][0]["InstanceId"]]}

    def server_down(self) -> dict[str, Any]:
        status = self.server_status()
        if not status["running"]:
            return status
        if self.ctx.profile.is_local:
            import os
            import signal

            os.kill(int(status["pid"]), signal.SIGTERM)  # it finishes the run in hand first
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    os.kill(int(status["pid"]), 0)
                except OSError:
                    break
                time.sleep(0.1)
            self._service_file.unlink(missing_ok=True)
        else:
            self.ctx.clients.client("ec2").terminate_instances(InstanceIds=status["instances"])
        return {**self.server_status(), "stopped": True}

    def service_user_data(self, queue_url: str) -> str:
        """The always-on Server: install, then take runs from the queue as a systemd service."""
        return "\n".join(
            [
                "#!/bin/bash",
                "# skydeck SDS-Inf Server baseline, always-on: takes runs from the server-requests queue.",
                "set -euxo pipefail",
                *self._install_lines(),
                "cat > /etc/systemd/system/sdsinf-server.service <<UNIT",
                "[Unit]",
                "Description=skydeck SDS-Inf server (always-on)",
                "[Service]",
                "WorkingDirectory=/opt/sdsinf/app",
                f"ExecStart=/opt/sdsinf/bin/python -m lambda_src.sdsinf.server --serve {queue_url}",
                "Restart=always",
                "[Install]",
                "WantedBy=multi-user.target",
                "UNIT",
                "systemctl daemon-reload && systemctl enable --now sdsinf-server",
                "",
            ]
        )

    def _start_server(self, request_uri: str) -> None:
        """The Server baseline on the local cloud: a job-scoped local process reading the same request."""
        import os
        import subprocess
        import sys

        log_dir = self.ctx.home.logs_dir / "executor"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "sdsinf-server.log", "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "lambda_src.sdsinf.server", "--event-s3", request_uri],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env={**os.environ, **self.ctx.clients.env()},
            )

    def follow(
        self,
        run_id: str,
        on_metric: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float = RUN_TIMEOUT_S,
        idle_timeout_s: float = 120.0,
    ) -> dict[str, Any]:
        """Stream each worker's per-layer metrics as they land; return the summary at the end.
        A run that stops producing metrics for `idle_timeout_s` fails instead of hanging."""
        bucket, prefix = self.out["MetricsBucket"], f"runs/{run_id}"
        seen: set[str] = set()
        started = last_progress = time.time()

        def drain() -> None:
            nonlocal last_progress
            for key in sorted(self._keys(bucket, f"{prefix}/live/")):
                if key in seen:
                    continue
                seen.add(key)
                last_progress = time.time()
                if on_metric:
                    on_metric(json.loads(self._get(bucket, key)))

        while True:
            drain()
            summary = self._maybe(bucket, f"{prefix}/summary.json")
            if summary is not None:
                drain()  # metrics written between the listing and the summary still count
                result = json.loads(summary)
                if result.get("variant") == "queue":
                    self.cleanup(run_id)
                if result.get("state") == "FAILED":
                    raise SkydeckError(f"run {run_id} failed: {result.get('error')}")
                return result | estimate_cost(result)
            now = time.time()
            if now - started > timeout_s or now - last_progress > idle_timeout_s:
                self.cleanup(run_id)
                raise SkydeckError(
                    f"run {run_id} made no progress for {now - last_progress:.0f}s "
                    f"(last metric: {sorted(seen)[-1].rsplit('/', 2)[-2:] if seen else 'none'}); "
                    "see the function's log: skydeck console -> Logs"
                )
            time.sleep(0.3)

    def runs(self) -> list[dict[str, Any]]:
        bucket = self.out["MetricsBucket"]
        found = []
        for key in self._keys(bucket, "runs/"):
            if key.endswith("/summary.json"):
                found.append(json.loads(self._get(bucket, key)))
        return sorted(found, key=lambda r: r["run_id"], reverse=True)

    def show(self, run_id: str) -> dict[str, Any]:
        bucket, prefix = self.out["MetricsBucket"], f"runs/{run_id}"
        summary = self._maybe(bucket, f"{prefix}/summary.json")
        if summary is None:
            raise NotFoundError(f"no finished run {run_id!r}; list them with: skydeck sdsinf runs")
        metrics = from_csv(self._get(bucket, f"{prefix}/metrics.csv").decode())
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
