"""The jobs API over HTTP on the local cloud, as the original's curl commands use it."""

from __future__ import annotations

import json
import time

import pytest

from backend.context import Context
from tests.conftest import SEED_JOBS
from tests.helpers import api, http, http_full, written

DRUMS = next(p for p in SEED_JOBS if p.name == "job_training_drums.json").read_bytes()


def test_seed_post_and_get_answer_as_the_original_did(cloud: Context) -> None:
    url, headers = api(cloud)
    before = written(cloud)
    status, body = http("POST", url, DRUMS, headers)
    assert status == 200  # the original's build_response(200, ...)
    assert set(body) == {"command", "config", "job_id"}
    assert body["command"] == json.loads(DRUMS)["command"] and body["config"] == json.loads(DRUMS)["config"]
    job_id = body["job_id"]
    assert written(cloud) == (before[0] + 1, before[1] + 1)
    status, listing = http("GET", url, None, headers)
    assert status == 200 and isinstance(listing, list)  # the original answered a JSON array of items
    job = next(j for j in listing if j["job_id"] == job_id)
    assert json.loads(job["command"])[1] == "test_synthetic_drums"  # JSON text, as the original stored it
    assert json.loads(job["config"])["upsamp_every"] == 38400
    assert job["state"] == "QUEUED"  # skydeck's own fields ride along
    status, one = http("GET", f"{url}jobs/{job_id}", None, headers)
    assert status == 200 and one["name"] == "test_synthetic_drums" and one["config"]["upsamp_every"] == 38400


def test_every_original_job_file_is_accepted_by_the_api(cloud: Context) -> None:
    url, headers = api(cloud)
    for path in SEED_JOBS:
        status, body = http("POST", url, path.read_bytes(), headers)
        assert status == 200, (path.name, body)


def test_the_root_list_pages_through_query_parameters_and_a_header(cloud: Context) -> None:
    url, headers = api(cloud)
    ids = {http("POST", url, DRUMS, headers)[1]["job_id"] for _ in range(3)}
    seen: list[str] = []
    token = None
    while True:
        query = "?limit=2" + (f"&next_token={token}" if token else "")
        status, page, answer_headers = http_full("GET", url + query, None, headers)
        assert status == 200 and isinstance(page, list) and len(page) <= 2
        seen += [j["job_id"] for j in page]
        token = answer_headers.get("X-Next-Token")
        if not token:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))


BAD = [
    (b'{"command": ["/bin/sh", "-c", "id", "/d", "-c"], "config": {}}', "command[0]", "unknown command"),
    (b'{"scene": "lego", "config": {"lr_sigmaa": 3}}', "config.lr_sigmaa", "unknown svox2 option"),
    (b'{"scene": "lego", "config": {"upsamp_every": "x"}}', "config.upsamp_every", "integer"),
    (b'{"scene": "lego", "config": {"lambda_tv": -1}}', "config.lambda_tv", ">= 0"),
    (b'{"scene": "lego", "config": {"reso": "[[4096, 4096, 4096]]"}}', "config.reso[0]", "between 1 and"),
    (b'{"command": ', "body", "not valid JSON"),
    (b"", "body", "empty"),
    (b'{"scene": "lego", "name": "' + b"x" * 70000 + b'"}', "body", "limit is"),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD)
def test_invalid_posts_are_refused_with_400_and_nothing_written(
    cloud: Context, body: bytes, field: str, words: str
) -> None:
    url, headers = api(cloud)
    before = written(cloud)
    status, answer = http("POST", url, body, headers)
    assert status == 400
    assert answer["field"] == field
    assert words in answer["message"]
    assert written(cloud) == before


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
def test_requests_without_valid_credentials_are_refused(cloud: Context, headers: dict[str, str]) -> None:
    url, _ = api(cloud)
    before = written(cloud)
    status, answer = http("POST", url, DRUMS, headers)
    assert status == 403
    assert "credentials" in answer["message"]
    assert http("GET", url, None, headers)[0] == 403
    assert written(cloud) == before


def test_list_pages_and_filters_by_state(cloud: Context) -> None:
    url, headers = api(cloud)
    ids = [http("POST", url + "jobs", DRUMS, headers)[1]["job_id"] for _ in range(3)]
    status, cancelled = http("DELETE", f"{url}jobs/{ids[0]}", None, headers)
    assert status == 200 and cancelled["state"] == "CANCELLED"
    seen: list[str] = []
    token = None
    while True:
        query = "?limit=2" + (f"&next_token={token}" if token else "")
        status, page = http("GET", url + "jobs" + query, None, headers)
        assert status == 200 and len(page["items"]) <= 2
        seen += [j["job_id"] for j in page["items"]]
        token = page["next_token"]
        if not token:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    status, only = http("GET", url + "jobs?state=CANCELLED&limit=1000", None, headers)
    assert ids[0] in [j["job_id"] for j in only["items"]]
    assert all(j["state"] == "CANCELLED" for j in only["items"])
    status, answer = http("GET", url + "jobs?state=DONE", None, headers)
    assert status == 400 and answer["field"] == "state"
    status, answer = http("GET", url + "?limit=0", None, headers)
    assert status == 400 and answer["field"] == "limit"
    status, answer = http("DELETE", f"{url}jobs/{ids[0]}", None, headers)
    assert status == 409 and "already ended" in answer["message"]
    status, answer = http("GET", f"{url}jobs/no-such-job", None, headers)
    assert status == 404


def test_skydeck_document_form_is_accepted(cloud: Context) -> None:
    url, headers = api(cloud)
    bucket = cloud.scenes.bucket
    doc = {"name": "lego-try", "scene": f"s3://{bucket}/scenes/lego", "engine": "torch", "config": {"lr_sh": 0.02}}
    status, body = http("POST", url + "jobs", json.dumps(doc).encode(), headers)
    assert status == 201
    assert body["job"]["engine"] == "torch" and body["job"]["config"] == {"lr_sh": 0.02}
    status, original = http("POST", url, json.dumps(doc).encode(), headers)
    assert status == 200 and original["config"] == {"lr_sh": 0.02}
    assert original["command"] == ["/data/svox2/opt/launch_auto.sh", "lego-try", "0", doc["scene"], "-c"]


@pytest.mark.parametrize(
    "body,field",
    [
        (b'{"scene": "lego", "config": {"lr_sigma": 1e200}}', "config.lr_sigma"),
        (b'{"scene": "lego", "config": {"lr_sigma": 5e-324}}', "config.lr_sigma"),
        (b'{"scene": "lego", "config": {"lr_sigma": 1.2345678901234567e-300}}', "config.lr_sigma"),
        (b'{"scene": "lego", "config": {"seq_id": 1' + b"0" * 40 + b"}}", "config.seq_id"),
        (b'{"scene": "lego", "config": ' + b"[" * 20000 + b"]" * 20000 + b"}", "body"),
        # svox2 takes reso as a string of JSON: it is parsed again, with the same bound
        (b'{"scene": "lego", "config": {"reso": "' + b"[" * 3000 + b"]" * 3000 + b'"}}', "config.reso"),
        (b'{"command": ["/data/svox2/opt/launch_auto.sh", "x", "0", "/data/x", "-c"], "config": {"reso": "'
         + b"[" * 3000 + b"]" * 3000 + b'"}}', "config.reso"),
    ],
    ids=["1e200", "5e-324", "1.23e-300", "40-digit-int", "nested-20000", "reso-nested-3000", "command-reso-3000"],
)
def test_numbers_no_record_can_hold_and_deep_nesting_are_a_4xx_naming_the_field(
    cloud: Context, body: bytes, field: str
) -> None:
    url, headers = api(cloud)
    before = written(cloud)
    status, answer = http("POST", url, body, headers)
    assert status == 400, answer
    assert answer["field"] == field and answer["message"]
    assert written(cloud) == before


def test_a_forged_next_token_is_a_400_not_a_500(cloud: Context) -> None:
    import base64

    url, headers = api(cloud)
    wrong_types = {"job_id": {"N": "1"}, "created_at": {"S": "z"}}
    other_state = {"job_id": {"S": "x"}, "state": {"S": "FAILED"}, "created_at": {"N": "1"}}
    forged = (
        {"job_id": {"S": "x"}, "bogus": {"S": "y"}}, {"job_id": {"L": []}}, wrong_types, [], "x",
        {"job_id": {"S": "nope"}},  # the table's key alone: once a 502 with a stack trace and host paths
    )  # fmt: skip
    for key, state in [(k, None) for k in forged] + [(other_state, "QUEUED")]:
        token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        query = f"?next_token={token}" + (f"&state={state}" if state else "")
        status, answer = http("GET", f"{url}{query}", None, headers)
        assert status == 400 and answer["field"] == "next_token", (key, status, answer)
        assert "Traceback" not in json.dumps(answer) and "/lambda/" not in json.dumps(answer)


def test_head_options_and_broken_content_lengths_get_a_4xx(cloud: Context) -> None:
    import socket
    from urllib.parse import urlsplit

    url, headers = api(cloud)
    for method in ("HEAD", "OPTIONS"):
        status, _ = http(method, url, None, headers)
        assert 400 <= status < 500, (method, status)
    where = urlsplit(url)

    def raw(request: bytes) -> bytes:
        with socket.create_connection((where.hostname, where.port), timeout=40) as conn:
            conn.sendall(request)
            return conn.recv(4096)

    auth = headers["Authorization"].encode()
    for length, expect in ((b"abc", b" 400 "), (b"-1", b" 400 ")):
        head = b"POST " + where.path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth
        answer = raw(head + b"\r\nContent-Length: " + length + b"\r\n\r\n{}")
        assert expect in answer.split(b"\r\n", 1)[0], answer[:200]
    # a stranger announcing a body is refused before the body is read
    answer = raw(b"POST " + where.path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
    assert b" 403 " in answer.split(b"\r\n", 1)[0]


def test_a_scene_in_another_accounts_bucket_or_on_the_host_is_refused(cloud: Context) -> None:
    url, headers = api(cloud)
    before = written(cloud)
    for scene, words in (("s3://other-bucket/k", "data bucket"), ("/etc", "under /data/"), ("/", "under /data/")):
        status, answer = http("POST", url + "jobs", json.dumps({"scene": scene}).encode(), headers)
        assert status == 400 and answer["field"] == "scene" and words in answer["message"], (scene, answer)
    assert written(cloud) == before


def test_a_burst_of_requests_is_answered_without_a_process_per_request(cloud: Context) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from backend.localcloud.api_front import MAX_IN_FLIGHT

    url, headers = api(cloud)
    function = cloud.stacks.outputs("api")["FunctionName"]

    home = str(cloud.home.root)

    def workers() -> int:
        # this cloud's workers only: another local cloud on the machine (a second test run) may run a
        # function of the same name
        count = 0
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_text(errors="replace") if entry.name.isdigit() else ""
                if function in cmdline and home in cmdline:
                    count += 1
            except OSError:
                continue
        return count

    with ThreadPoolExecutor(max_workers=60) as pool:
        statuses = list(pool.map(lambda _: http("GET", url + "?limit=5", None, headers)[0], range(120)))
    assert statuses.count(200) == 120
    # a worker the runtime has just stopped can be read in /proc for a moment while it exits (more so
    # on a busy machine): the bound must hold once those are gone, within a generous wait
    deadline = time.monotonic() + 15
    while workers() > MAX_IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers() <= MAX_IN_FLIGHT


def test_a_submit_retried_with_its_idempotency_key_makes_one_job(cloud: Context) -> None:
    """A client that lost the answer to a submit (a dropped connection, a restarting cloud) sends it
    again with the same Idempotency-Key: it gets the job it made, and no second job runs."""
    url, headers = api(cloud)
    keyed = {**headers, "Idempotency-Key": "retry-test-7f3a"}
    body = json.dumps({"scene": "lego", "name": "retried", "config": {"lr_sigma": 30.5}}).encode()
    before = written(cloud)
    first_status, first = http("POST", url + "jobs", body, keyed)
    assert first_status == 201, first
    # the answer was lost, and so was the message: the retry must put the job back in the queue
    store = cloud.jobs.store
    _lose_message(store, first["job_id"])
    again_status, again = http("POST", url + "jobs", body, keyed)
    assert again_status == 201 and again["job_id"] == first["job_id"], again
    assert written(cloud)[0] == before[0] + 1  # one job in the table
    assert _lose_message(store, first["job_id"]) == 1  # and its message sent again, once
    # at the stage root (the original's path) the same key names the same job
    root_status, root = http("POST", url, body, keyed)
    assert root_status == 200 and root["job_id"] == first["job_id"]
    # the same key with another body is a conflict, not a silent reuse
    other = json.dumps({"scene": "lego", "name": "retried", "config": {"lr_sigma": 31.0}}).encode()
    status, refused = http("POST", url + "jobs", other, keyed)
    assert status == 409 and refused["field"] == "Idempotency-Key" and first["job_id"] in refused["message"]
    status, refused = http("POST", url + "jobs", body, {**headers, "Idempotency-Key": "no spaces allowed"})
    assert status == 400 and refused["field"] == "Idempotency-Key"
    assert written(cloud)[0] == before[0] + 1


def _lose_message(store, job_id: str) -> int:  # noqa: ANN001
    """Take this job's messages out of the queue (others' stay); how many there were."""
    import time

    lost, deadline = 0, time.time() + 5
    while time.time() < deadline:
        # others' messages stay hidden for 5 s, so each pass sees new ones until the queue reads empty
        got = store.sqs.receive_message(
            QueueUrl=store.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=5, WaitTimeSeconds=0
        )
        messages = got.get("Messages", [])
        if not messages:
            break
        for m in messages:
            if json.loads(m["Body"]).get("job_id") == job_id:
                store.sqs.delete_message(QueueUrl=store.queue_url, ReceiptHandle=m["ReceiptHandle"])
                lost += 1
    return lost


@pytest.mark.slow
def test_deleting_the_api_token_revokes_it_and_api_url_says_how_to_get_a_new_one(tmp_path) -> None:  # noqa: ANN001
    from backend.core.paths import Home
    from backend.localcloud import control
    from tests.test_cli import run

    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        ctx.stacks.deploy("api")
        url, headers = api(ctx)
        assert http("GET", url, None, headers)[0] == 200
        home.local_token_file.unlink()
        assert http("GET", url, None, headers)[0] == 403, "a deleted token still opened the API"
        shown = run(home.root, "api", "url")
        assert shown.returncode == 4 and "token" in shown.stderr and "skydeck local up" in shown.stderr
        assert "Errno" not in shown.stderr
    finally:
        control.down(home)


def test_the_local_api_takes_sigv4_signed_with_the_local_credentials_as_aws_takes_iam(cloud: Context) -> None:
    """The same signed request (curl --aws-sigv4 "aws:amz:REGION:execute-api") works here and on AWS."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from backend.core.aws import local_credentials

    url, _ = api(cloud)
    creds = local_credentials(cloud.home)

    def signed(method: str, target: str, body: bytes | None, secret: str) -> tuple[int, object]:
        request = AWSRequest(method=method, url=target, data=body or b"",
                             headers={"Content-Type": "application/json"} if body else {})  # fmt: skip
        SigV4Auth(Credentials(creds.access_key_id, secret), "execute-api", cloud.profile.region).add_auth(request)
        return http(method, target, body, dict(request.headers.items()))

    status, listing = signed("GET", url + "jobs?limit=2", None, creds.secret_access_key)
    assert status == 200 and "items" in listing
    body = json.dumps({"scene": "lego", "name": "signed"}).encode()
    status, made = signed("POST", url + "jobs", body, creds.secret_access_key)
    assert status == 201 and made["job_id"], made
    assert signed("GET", url + "jobs", None, "not-the-secret")[0] == 403


def test_the_root_get_answers_every_job_with_what_was_sent_and_the_originals_metric_text(cloud: Context) -> None:
    url, headers = api(cloud)
    sent = json.loads(DRUMS)
    made = [http("POST", url, DRUMS, headers)[1]["job_id"] for _ in range(3)]
    store = cloud.jobs.store
    assert store.claim(made[0], "w-root") is not None
    store.finish(made[0], "w-root", "SUCCEEDED", result={"psnr": 31.25, "ssim": 0.9512, "lpips": 0.0625})
    many = 60  # more than a page of 50: the root answers them all, as the original's scan did
    for _ in range(many):
        http("POST", url + "jobs", json.dumps({"scene": "lego"}).encode(), headers)
    status, listing, answer_headers = http_full("GET", url, None, headers)
    assert status == 200 and "X-Next-Token" not in answer_headers
    assert len(listing) >= many + 3
    by_id = {j["job_id"]: j for j in listing}
    for job_id in made:
        assert by_id[job_id]["command"] == json.dumps(sent["command"])  # the command as sent
        assert by_id[job_id]["config"] == json.dumps(sent["config"])
    done = by_id[made[0]]
    assert (done["psnr"], done["ssim"], done["lpips"]) == (" 31.25", " 0.9512", " 0.0625")


def test_a_grid_no_host_could_hold_is_refused_by_the_api(cloud: Context) -> None:
    url, headers = api(cloud)
    before = written(cloud)
    doc = {"scene": "lego", "engine": "torch", "config": {"reso": "[[2048, 2048, 2048]]", "batch_size": 1 << 20}}
    status, answer = http("POST", url + "jobs", json.dumps(doc).encode(), headers)
    assert status == 400 and answer["field"] == "config" and "GiB of memory" in answer["message"], answer
    doc["config"]["batch_size"] = 10**12
    status, answer = http("POST", url + "jobs", json.dumps(doc).encode(), headers)
    assert status == 400 and answer["field"] == "config.batch_size", answer
    assert written(cloud) == before
