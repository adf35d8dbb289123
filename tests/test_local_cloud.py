"""The embedded local cloud: lifecycle, durability, SQS semantics and the Lambda runtime."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from backend.context import Context
from backend.core.errors import NotFoundError
from backend.core.paths import Home
from backend.localcloud import control
from backend.localcloud.lambda_runtime import FunctionSpec, LambdaRuntime
from lambda_src.jobs.schema import parse_job
from tests.helpers import api, http

pytestmark = pytest.mark.slow  # end to end through a local cloud of its own


def test_up_is_idempotent_and_status_reports_each_part(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    assert control.status(home).to_dict() == {"running": False, "pid": None, "parts": {}}
    first = control.up(home)
    try:
        again = control.up(home)
        assert again.state["pid"] == first.state["pid"]
        info = control.status(home).to_dict()
        assert info["running"] and info["healthy"]
        assert {"moto", "lambda", "api"} <= set(info["parts"])
        assert all(isinstance(p["pid"], int) for p in info["parts"].values())
        token = home.local_token_file
        assert token.stat().st_mode & 0o777 == 0o600
    finally:
        assert control.down(home)
    assert not control.status(home).running
    assert control.down(home) is False


def test_state_survives_down_up_and_kill_9(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        ctx.stacks.deploy("api")
        url, headers = api(ctx)
        seed = (Path(__file__).parent / "fixtures" / "seed_jobs" / "job_training_lego.json").read_bytes()
        job_id = http("POST", url, seed, headers)[1]["job_id"]
        bucket = ctx.stacks.outputs("infra")["Bucket"]
        ctx.clients.client("s3").put_object(Bucket=bucket, Key="data/scene.txt", Body=b"kept")

        def everything_is_there() -> None:
            c = Context.create(None, home)
            assert {i.short: i.status for i in c.stacks.list()}["api"] == "CREATE_COMPLETE"
            assert c.jobs.get(job_id).state == "QUEUED"
            assert c.jobs.queue_depth()["queue_visible"] == 1
            body = c.clients.client("s3").get_object(Bucket=bucket, Key="data/scene.txt")["Body"].read()
            assert body == b"kept"
            u, h = api(c)
            assert job_id in [j["job_id"] for j in http("GET", u, None, h)[1]]
            # the URL a script kept from before the restart still answers (the replay mints new API ids)
            assert u == url and job_id in [j["job_id"] for j in http("GET", url, None, headers)[1]]

        control.down(home)
        control.up(home)
        everything_is_there()
        os.kill(control.status(home).state["pid"], signal.SIGKILL)
        time.sleep(0.3)
        assert not control.status(home).running
        restarted = control.up(home)
        assert restarted.state["restored"]["messages"] == 1
        everything_is_there()
    finally:
        control.down(home)


def test_consumed_messages_do_not_come_back_after_restart(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        sqs = ctx.clients.client("sqs")
        queue = ctx.stacks.outputs("infra")["QueueUrl"]
        for i in range(3):
            sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}")
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"])
        control.down(home)
        control.up(home)
        sqs = Context.create(None, home).clients.client("sqs")
        bodies = sorted(m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"])
        assert bodies == sorted({"m0", "m1", "m2"} - {got["Body"]})
    finally:
        control.down(home)


def test_sqs_visibility_delete_and_dead_letter(cloud: Context) -> None:
    sqs = cloud.clients.client("sqs")
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName="t-dlq")["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    q = sqs.create_queue(
        QueueName="t-main",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=q, MessageBody="poison")
    sqs.send_message(QueueUrl=q, MessageBody="later", DelaySeconds=1)
    first = sqs.receive_message(QueueUrl=q, VisibilityTimeout=1)["Messages"]
    assert [m["Body"] for m in first] == ["poison"]
    assert sqs.receive_message(QueueUrl=q, VisibilityTimeout=1).get("Messages") is None  # hidden + delayed
    time.sleep(1.2)
    again = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
    assert sorted(m["Body"] for m in again) == ["later", "poison"]
    later = next(m for m in again if m["Body"] == "later")
    sqs.delete_message(QueueUrl=q, ReceiptHandle=later["ReceiptHandle"])
    time.sleep(1.2)
    assert sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10).get("Messages") is None  # poison moved on
    dlq = sqs.get_queue_url(QueueName="t-dlq")["QueueUrl"]
    moved = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]
    started = time.time()
    assert sqs.receive_message(QueueUrl=q, WaitTimeSeconds=1).get("Messages") is None
    assert 0.9 <= time.time() - started < 3  # long polling waits, then answers empty


def test_a_publish_whose_message_structure_is_not_json_is_sent_as_plain_text(cloud: Context) -> None:
    """AWS reads MessageStructure only when it is `json`; the original SDS-Inf worker publishes every
    batch entry with `MessageStructure: 'string'`, which moto alone refuses."""
    sns, sqs = cloud.clients.client("sns"), cloud.clients.client("sqs")
    topic = sns.create_topic(Name="t-plain")["TopicArn"]
    queue = sqs.create_queue(QueueName="t-plain")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    entry = {"Id": "10", "Message": "b'x\\x9c{not json}'", "Subject": "for worker 1", "MessageStructure": "string"}
    answer = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[entry])
    assert answer["Failed"] == [] and len(answer["Successful"]) == 1
    sns.publish(TopicArn=topic, Message="single", MessageStructure="string")
    # `json` is still read as AWS reads it: each protocol its own text
    sns.publish(TopicArn=topic, Message='{"default": "d", "sqs": "for sqs"}', MessageStructure="json")
    bodies: list[str] = []
    deadline = time.monotonic() + 30
    while len(bodies) < 3 and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies += [m["Body"] for m in got]
    assert sorted(bodies) == sorted([entry["Message"], "single", "for sqs"])


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fn.py", source)
    return buf.getvalue()


HANDLER = """
import os, time
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    started = time.time()
    if event.get("sleep"):
        time.sleep(event["sleep"])
    with open(os.environ["MARK_FILE"], "a") as f:
        f.write(event.get("tag", "x") + "\\n")
    return {"pid": os.getpid(), "echo": event, "span": [started, time.time()]}
"""


def test_deployed_function_runs_sync_and_async_through_the_lambda_api(cloud: Context, tmp_path: Path) -> None:
    lam = cloud.clients.client("lambda")
    iam = cloud.clients.client("iam")
    role = iam.create_role(RoleName="t-fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    marks = tmp_path / "marks.txt"
    lam.create_function(
        FunctionName="t-echo",
        Runtime="python3.12",
        Role=role,
        Handler="fn.handler",
        Code={"ZipFile": _zip(HANDLER)},
        Timeout=2,
        Environment={"Variables": {"MARK_FILE": str(marks)}},
    )
    out = lam.invoke(FunctionName="t-echo", Payload=json.dumps({"tag": "sync"}))
    assert json.loads(out["Payload"].read())["echo"] == {"tag": "sync"}
    failed = lam.invoke(FunctionName="t-echo", Payload=json.dumps({"fail": True}))
    assert failed["FunctionError"] == "Unhandled"
    assert "asked to fail" in json.loads(failed["Payload"].read())["errorMessage"]
    slow = lam.invoke(FunctionName="t-echo", Payload=json.dumps({"sleep": 5}))
    assert "timed out" in json.loads(slow["Payload"].read())["errorMessage"]
    assert lam.invoke(FunctionName="t-echo", InvocationType="Event", Payload=b'{"tag": "async"}')["StatusCode"] == 202
    deadline = time.time() + 10
    while time.time() < deadline and "async" not in marks.read_text():
        time.sleep(0.1)
    assert marks.read_text().split() == ["sync", "async"]


def _spec(code: bytes, **kw: object) -> FunctionSpec:
    base = dict(
        name="unit",
        arn="arn:aws:lambda:us-east-1:123456789012:function:unit",
        handler="fn.handler",
        code=code,
        code_sha="sha-" + str(hash(code)),
        timeout_s=5,
        memory_mb=128,
        env={},
    )
    base.update(kw)
    return FunctionSpec(**base)  # type: ignore[arg-type]


def test_async_invoke_honours_retry_count_and_event_age(tmp_path: Path) -> None:
    runtime = LambdaRuntime(tmp_path / "work", {}, tmp_path / "logs")
    try:
        marks = tmp_path / "m.txt"
        code = _zip(
            HANDLER.replace(
                'raise ValueError("asked to fail")',
                'open(os.environ["MARK_FILE"], "a").write("try\\n"); raise ValueError("no")',
            )
        )
        spec = _spec(code, env={"MARK_FILE": str(marks)}, max_retries=1)
        runtime.invoke_async(spec, {"fail": True})
        deadline = time.time() + 10
        while time.time() < deadline and len([r for r in runtime.history if r.kind == "async"]) < 2:
            time.sleep(0.1)
        time.sleep(1.5)  # a third attempt would have come by now
        attempts = [r for r in runtime.history if r.kind == "async"]
        assert [r.attempt for r in attempts] == [1, 2]
        assert marks.read_text().split() == ["try", "try"]
        aged = _spec(code, env={"MARK_FILE": str(marks)}, max_event_age_s=-1)
        runtime.invoke_async(aged, {"tag": "never"})
        deadline = time.time() + 5
        while time.time() < deadline and not any(r.status == "dropped" for r in runtime.history):
            time.sleep(0.05)
        assert any(r.status == "dropped" and "MaximumEventAgeInSeconds" in r.detail for r in runtime.history)
        assert "never" not in marks.read_text()
    finally:
        runtime.shutdown()


def test_workers_run_in_parallel_processes(tmp_path: Path) -> None:
    runtime = LambdaRuntime(tmp_path / "work", {}, tmp_path / "logs")
    try:
        from concurrent.futures import ThreadPoolExecutor

        spec = _spec(_zip(HANDLER), env={"MARK_FILE": str(tmp_path / "m")})
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda _: runtime.invoke(spec, {"sleep": 1}), range(4)))
        assert all(o.ok for o in outs), [o.payload for o in outs]
        assert len({o.payload["pid"] for o in outs}) == 4
        spans = [o.payload["span"] for o in outs]
        assert max(s[0] for s in spans) < min(s[1] for s in spans)  # all four were running at once
    finally:
        runtime.shutdown()


def test_job_store_validates_before_anything_is_written(cloud: Context) -> None:
    spec = parse_job({"scene": "lego", "config": {"lr_sigma": 10}})
    record = cloud.jobs.submit(spec)
    assert cloud.jobs.get(record.job_id).config == {"lr_sigma": 10.0}
    with pytest.raises(Exception, match="no job"):
        cloud.jobs.get("missing")


def test_read_cache_never_keeps_an_answer_that_raced_a_write() -> None:
    from backend.localcloud.gateway import ReadCache

    cache = ReadCache(size=2)
    answer = ("200 OK", [("Content-Type", "application/x-amz-json-1.0")], b'{"Count": 1}')
    generation = cache.generation
    cache.invalidate()  # a write landed while the query ran
    cache.put(b"q1", generation, answer)
    assert cache.get(b"q1") is None
    cache.put(b"q1", cache.generation, answer)
    assert cache.get(b"q1") == answer
    cache.put(b"q2", cache.generation, answer)
    cache.put(b"q3", cache.generation, answer)  # over size: the least recently used goes
    assert cache.get(b"q1") is None and cache.get(b"q3") == answer
    cache.invalidate()
    assert cache.get(b"q3") is None


def test_queries_see_writes_at_once_through_the_cache(cloud) -> None:  # noqa: ANN001
    from lambda_src.jobs.schema import parse_job

    before = cloud.jobs.list(state="QUEUED", limit=1000).items
    again = cloud.jobs.list(state="QUEUED", limit=1000).items  # answered from the cache
    assert [j.job_id for j in before] == [j.job_id for j in again]
    job_id = cloud.jobs.submit(parse_job({"scene": "cache-check"})).job_id
    after = cloud.jobs.list(state="QUEUED", limit=1000).items
    assert job_id in [j.job_id for j in after]


def test_one_local_cloud_per_home_and_a_killed_ones_workers_do_not_linger(tmp_path: Path) -> None:
    import subprocess
    import sys

    from backend.localcloud.instance import _group_members

    home = Home(tmp_path / "h")
    first = control.up(home, workers=1)
    try:
        pid, pgid = first.state["pid"], first.state["pgid"]
        # a second server for the same home refuses at once, naming the first
        second = subprocess.run(
            [sys.executable, "-m", "backend.localcloud.server", "--home", str(home.root)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 3 and f"pid {pid}" in second.stderr
        assert control.status(home).state["pid"] == pid
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")  # the workers start once there is a queue to serve
        ctx.stacks.deploy("fleet")  # and a fleet role to serve it as
        deadline = time.time() + 60
        while time.time() < deadline and len(_group_members(pgid)) < 2:
            time.sleep(0.2)  # the executor worker starts beside the server
        workers = [p for p in _group_members(pgid) if p != pid]
        assert workers, "the executor worker never started"
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        assert all(_alive(p) for p in workers), "workers outlive a kill -9 of their server"
        again = control.up(home, workers=0)
        assert again.state["pid"] != pid
        assert not any(_alive(p) for p in workers), "the next local up stops the dead server's workers"
    finally:
        control.down(home)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_local_endpoint_takes_only_requests_signed_with_the_homes_credentials(cloud: Context) -> None:
    import boto3
    from botocore.exceptions import ClientError

    home = cloud.home
    assert home.local_credentials_file.stat().st_mode & 0o777 == 0o600
    endpoint = cloud.clients.endpoint
    table = cloud.stacks.outputs("infra")["TableName"]
    forged = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="AKIAFORGED", aws_secret_access_key="made-up",
    )  # fmt: skip
    with pytest.raises(ClientError) as refused:
        forged.scan(TableName=table)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        forged.put_item(TableName=table, Item={"job_id": {"S": "forged"}, "state": {"S": "SUCCEEDED"}})
    right_key_wrong_secret = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=json.loads(home.local_credentials_file.read_text())["access_key_id"],
        aws_secret_access_key="not-the-secret",
    )  # fmt: skip
    with pytest.raises(ClientError):
        right_key_wrong_secret.list_buckets()
    for method, path in (("GET", "/moto-api/"), ("POST", "/moto-api/reset"), ("GET", "/")):
        req = urllib.request.Request(endpoint + path, method=method)
        with pytest.raises(urllib.error.HTTPError) as closed:
            urllib.request.urlopen(req, timeout=10)
        assert closed.value.code == 403
    with pytest.raises(NotFoundError):
        cloud.jobs.get("forged")  # nothing was written
    assert cloud.clients.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"] >= 0  # the real one works


def test_motos_skipped_resource_warnings_become_one_note_per_type() -> None:
    import logging

    from backend.localcloud.server import SkippedResourceNote

    note = SkippedResourceNote()
    records = [
        logging.LogRecord("moto", logging.WARNING, "", 0, "No Moto CloudFormation support for %s", (kind,), None)
        for kind in ("AWS::S3::BucketPolicy", "AWS::S3::BucketPolicy", "AWS::Lambda::EventInvokeConfig")
    ]
    kept = [r for r in records if note.filter(r)]
    assert [r.getMessage().split()[0] for r in kept] == ["AWS::S3::BucketPolicy", "AWS::Lambda::EventInvokeConfig"]
    assert all(r.levelname == "INFO" and "harmless" in r.getMessage() for r in kept)
    other = logging.LogRecord("moto", logging.WARNING, "", 0, "a real problem", (), None)
    assert note.filter(other) and other.levelname == "WARNING"


def test_a_signature_older_than_fifteen_minutes_is_refused_as_aws_refuses_it() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from backend.core.local_credentials import LocalCredentials
    from backend.localcloud import sigv4

    creds = LocalCredentials("AKIALOCALTEST", "local-secret")
    body = b"Action=ListQueues&Version=2012-11-05"
    request = AWSRequest(
        method="POST", url="http://127.0.0.1:4566/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key), "sqs", "us-east-1").add_auth(request)
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "HTTP_HOST": "127.0.0.1:4566",
        "CONTENT_TYPE": request.headers["Content-Type"],
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in request.headers.items() if k != "Content-Type"},
    }  # fmt: skip
    signed_at = sigv4._signed_at(request.headers["X-Amz-Date"])
    assert sigv4.check(environ, body, creds, now=signed_at + 60) is None
    for later in (16 * 60, 30 * 24 * 3600, -16 * 60):
        refused = sigv4.check(environ, body, creds, now=signed_at + later)
        assert refused is not None and "signatures are good for 15 minutes" in refused


def test_every_file_under_the_home_is_the_users_alone(tmp_path: Path) -> None:
    import stat

    home = Home(tmp_path / "h")
    home.ensure()
    old = home.logs_dir / "localcloud.log"
    old.write_text("written by an older skydeck\n")
    old.chmod(0o644)  # as homes were left before
    control.up(home, workers=0)
    try:
        Context.create(None, home).clients.client("s3").create_bucket(Bucket="private")
    finally:
        control.down(home)
    loose = []
    for folder, dirs, files in os.walk(home.root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if path.is_symlink():
                continue
            want = 0o700 if path.is_dir() else 0o600
            if stat.S_IMODE(path.stat().st_mode) != want:
                loose.append(f"{oct(stat.S_IMODE(path.stat().st_mode))} {path.relative_to(home.root)}")
    assert not loose, loose
    assert home.local_journal.exists()


def test_the_executors_scratch_folder_is_private_and_never_a_planted_link(tmp_path: Path) -> None:
    from gpu_executor.executor import private_workdir

    made = private_workdir(tmp_path / "scratch")
    assert made.stat().st_mode & 0o777 == 0o700
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "planted").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RuntimeError, match="symlink or not this user's"):
        private_workdir(tmp_path / "planted")


def test_a_connection_that_never_finishes_its_headers_is_closed(cloud: Context) -> None:
    import socket
    from urllib.parse import urlsplit

    from backend.localcloud.api_front import READ_TIMEOUT_S

    state = json.loads(cloud.home.local_state_file.read_text())
    held = []
    for base in (state["endpoint"], state["api_base"]):
        parts = urlsplit(base)
        conn = socket.create_connection((parts.hostname, parts.port), timeout=5)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and then nothing more
        held.append(conn)
    for conn in held:
        conn.settimeout(READ_TIMEOUT_S * 3)  # generous: the server drops it after READ_TIMEOUT_S
        try:
            while conn.recv(4096):
                pass  # an error answer may come first; then the server closes
        finally:
            conn.close()


def test_the_local_clouds_executors_run_the_hosts_entry_point_once_infra_and_fleet_are_deployed(
    tmp_path: Path,
) -> None:
    """The local cloud starts `python -m gpu_executor`, as a fleet host's unit does, with the infra stack's
    queue, table and bucket, as the fleet's instance role; none starts before there is a stack to serve
    and a role to serve it as, and a job trains to the end."""
    from backend.localcloud.instance import _group_members
    from gpu_executor.plenoxels.scene import make_scene
    from lambda_src.jobs.schema import parse_job

    home = Home(tmp_path / "h")
    up = control.up(home, workers=1)
    try:
        pid, pgid = up.state["pid"], up.state["pgid"]
        time.sleep(4)  # longer than the pool's wait between looks at the stacks
        assert [p for p in _group_members(pgid) if p != pid] == [], "an executor started with no infra stack"
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        time.sleep(4)
        assert [p for p in _group_members(pgid) if p != pid] == [], "an executor started with no fleet role"
        ctx.stacks.deploy("fleet")
        make_scene("tiny", tmp_path / "scene", size=32, views=12, test_views=2)
        ctx.scenes.push(tmp_path / "scene", "tiny")
        config = {"reso": "[[32, 32, 32]]", "n_iters": 60, "batch_size": 1000, "lambda_tv": 0.0, "lambda_tv_sh": 0.0}
        job_id = ctx.jobs.store.submit(parse_job({"scene": "tiny", "engine": "torch", "config": config})).job_id
        deadline = time.time() + 600
        while time.time() < deadline and ctx.jobs.store.get(job_id).state in ("QUEUED", "RUNNING"):
            time.sleep(1)
        job = ctx.jobs.store.get(job_id)
        assert job.state == "SUCCEEDED", job.error
        workers = [p for p in _group_members(pgid) if p != pid]
        cmdlines = [Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0") for p in workers]
        assert cmdlines and all(b"gpu_executor" in c for c in cmdlines), cmdlines
        # `fleet hosts` lists the local executor as what it is: its pid, engine and heartbeat
        env = {**os.environ, "SKYDECK_HOME": str(home.root)}
        listed = subprocess.run(
            [sys.executable, "-m", "cli", "fleet", "hosts", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        hosts = {h["instance_id"]: h for h in json.loads(listed.stdout)["hosts"]}
        assert hosts["local-1"]["local"] and hosts["local-1"]["pid"] in workers, hosts
        assert hosts["local-1"]["engine"] == "torch" and hosts["local-1"]["heartbeat"]
        resumed = subprocess.run(
            [sys.executable, "-m", "cli", "fleet", "resume"], capture_output=True, text=True, env=env, timeout=120
        )  # nothing is stopped: nothing to confirm, no word of cost
        assert resumed.returncode == 0 and "nothing to resume" in resumed.stdout and "cost" not in resumed.stderr
    finally:
        control.down(home)


def test_local_executors_keep_lpips_weights_in_the_skydeck_home(cloud_home: Home) -> None:
    """LPIPS's VGG weights are fetched once, where lpips and torchvision are installed: into the skydeck
    home, not a per-user cache the executors' work folder would not find again."""
    from backend.localcloud.executors import executor_settings

    ctx = Context.create(None, cloud_home)
    ctx.stacks.deploy("infra")
    ctx.stacks.deploy("fleet")  # the executors run as its instance role
    try:
        settings = executor_settings(cloud_home.root)
    finally:
        ctx.stacks.delete("fleet")  # the session's cloud has infra and api only
    assert settings is not None and settings["TORCH_HOME"] == str(cloud_home.cache_dir / "torch")


def test_the_local_clouds_log_says_once_what_it_skips_without_moto_warnings(cloud: Context) -> None:
    # the Logs screen was mostly moto UserWarnings, each followed by the "skipped ... harmless" line
    cloud.stacks.deploy("sdsinf")
    log = (cloud.home.logs_dir / "localcloud.log").read_text()
    assert "UserWarning" not in log
    skipped = [line.split(" INFO ", 1)[1] for line in log.splitlines() if "is skipped by the local cloud" in line]
    assert skipped and len(skipped) == len(set(skipped)), skipped

