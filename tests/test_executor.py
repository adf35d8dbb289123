"""The executor's lifecycle against a real queue and table (its own infra stack on the local cloud)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backend.context import Context
from backend.core.paths import Home
from backend.core.profiles import Profile
from backend.localcloud import control
from gpu_executor.executor import Executor, ExecutorConfig
from lambda_src.jobs.job_table import JobStore
from lambda_src.jobs.record import JobProgress
from lambda_src.jobs.schema import parse_job
from tests.engines import ScriptedEngine


@pytest.fixture(scope="module")
def exec_ctx(cloud_home) -> Context:  # noqa: ANN001 - the session fixture
    ctx = Context(home=cloud_home, profile=Profile(name="exectest", stack_prefix="exectest"))
    ctx.stacks.deploy("infra", {"MaxReceiveCount": "2", "VisibilityTimeout": "30"})
    return ctx


@pytest.fixture
def store(exec_ctx: Context) -> JobStore:
    s = exec_ctx.jobs.store
    _drain(s, s.queue_url)
    return s


def _drain(store: JobStore, url: str) -> None:
    while True:
        got = store.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return
        for m in got:
            store.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _executor(store: JobStore, engine: ScriptedEngine, worker: str = "w1", **cfg: float) -> Executor:
    config = ExecutorConfig(wait_s=1, progress_every_s=0.2, extend_every_s=0.5, **cfg)  # type: ignore[arg-type]
    return Executor(store, {engine.name: engine}, config, worker_id=worker)


def _depth(store: JobStore, url: str | None = None) -> int:
    attrs = store.sqs.get_queue_attributes(
        QueueUrl=url or store.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _submit(store: JobStore, **doc: object) -> str:
    return store.submit(parse_job({"scene": "lego", **doc})).job_id


def test_a_job_runs_to_succeeded_with_its_result(store: JobStore) -> None:
    engine = ScriptedEngine()
    job_id = _submit(store)
    assert _executor(store, engine).poll_once()
    job = store.get(job_id)
    assert job.state == "SUCCEEDED"
    assert job.result.psnr == 30.5 and job.result.engine == "scripted"
    assert "engine auto -> scripted" in job.result.notes[0]
    assert job.attempts == 1 and job.worker == "w1"
    assert _depth(store) == 0


def test_a_job_delivered_twice_runs_once(store: JobStore) -> None:
    engine = ScriptedEngine()
    job_id = _submit(store)
    store.enqueue(job_id)  # the same job id arrives a second time
    ex = _executor(store, engine)
    outcomes = [ex.handle(m) for m in _receive_all(store, 2)]
    assert sorted(outcomes) == ["duplicate", "succeeded"]
    assert engine.runs == [job_id]
    assert store.claim(job_id, "w2") is None


def _receive_all(store: JobStore, n: int) -> list[dict]:
    got: list[dict] = []
    deadline = time.time() + 5
    while len(got) < n and time.time() < deadline:
        got += store.sqs.receive_message(QueueUrl=store.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    return got


def test_cancel_stops_a_running_job(store: JobStore) -> None:
    engine = ScriptedEngine(steps=100, step_s=0.05)
    job_id = _submit(store)
    ex = _executor(store, engine)
    runner = threading.Thread(target=ex.poll_once)
    runner.start()
    _wait_for(lambda: store.get(job_id).state == "RUNNING")
    _wait_for(lambda: ((store.get(job_id).progress or JobProgress()).iteration or 0) >= 2)
    assert store.cancel(job_id).cancel_requested is True
    runner.join(timeout=10)
    job = store.get(job_id)
    assert job.state == "CANCELLED" and job.error == "cancelled by operator"
    assert job.progress.iteration < 100
    assert _depth(store) == 0


def test_a_stopping_executor_hands_the_job_back(store: JobStore) -> None:
    engine = ScriptedEngine(steps=100, step_s=0.05)
    job_id = _submit(store)
    ex = _executor(store, engine)
    runner = threading.Thread(target=ex.poll_once)
    runner.start()
    _wait_for(lambda: store.get(job_id).state == "RUNNING")
    ex.stopping.set()  # what SIGTERM does
    runner.join(timeout=10)
    job = store.get(job_id)
    assert job.state == "QUEUED" and "re-queued" in job.note
    assert _depth(store) == 1  # sent again for the next executor
    follower = _executor(store, ScriptedEngine(), worker="w2")
    assert follower.poll_once()
    assert store.get(job_id).state == "SUCCEEDED" and store.get(job_id).attempts == 2


def test_visibility_is_extended_while_a_long_job_runs(store: JobStore) -> None:
    engine = ScriptedEngine(steps=30, step_s=0.1)
    job_id = _submit(store)
    ex = _executor(store, engine, visibility_s=1)
    runner = threading.Thread(target=ex.poll_once)
    runner.start()
    _wait_for(lambda: store.get(job_id).state == "RUNNING")
    stolen = []
    deadline = time.time() + 2.5
    while time.time() < deadline:  # well past the 1 s visibility: nobody else may receive it
        stolen += store.sqs.receive_message(QueueUrl=store.queue_url, WaitTimeSeconds=1).get("Messages", [])
    runner.join(timeout=10)
    assert stolen == []
    assert store.get(job_id).state == "SUCCEEDED" and engine.runs == [job_id]


def test_engine_errors_and_crashes_fail_the_job_not_the_executor(store: JobStore) -> None:
    bad = _submit(store)
    _executor(store, ScriptedEngine(fail="dataset has no transforms_train.json")).poll_once()
    assert store.get(bad).state == "FAILED"
    assert store.get(bad).error == "dataset has no transforms_train.json"
    crash = _submit(store)
    _executor(store, ScriptedEngine(crash=True)).poll_once()
    assert "engine crashed: ZeroDivisionError" in store.get(crash).error
    missing = _submit(store, engine="svox2")
    _executor(store, ScriptedEngine()).poll_once()
    assert "engine 'svox2' is not installed" in store.get(missing).error


def test_poison_messages_end_in_the_dead_letter_queue(exec_ctx: Context, store: JobStore) -> None:
    dlq = exec_ctx.stacks.outputs("infra")["DeadLetterQueueUrl"]
    _drain(store, dlq)
    store.sqs.send_message(QueueUrl=store.queue_url, MessageBody="rm -rf /")
    store.sqs.send_message(QueueUrl=store.queue_url, MessageBody=json.dumps({"job_id": "no-such-job"}))
    ex = _executor(store, ScriptedEngine())
    for _ in range(6):
        ex.poll_once()
    assert _depth(store) == 0
    assert _depth(store, dlq) == 2


def _wait_for(cond, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_reconcile_requeues_a_job_whose_executor_died_and_resends_a_lost_message(store: JobStore) -> None:
    dead = _submit(store)
    lost = _submit(store)
    _drain(store, store.queue_url)  # both messages are gone: lost, or taken by an executor that died
    assert store.claim(dead, "dead-host") is not None
    time.sleep(0.2)
    done = store.reconcile(queued_stale_s=0, heartbeat_stale_s=0.1)
    assert done["requeued"] == [dead] and lost in done["resent"]
    assert store.get(dead).state == "QUEUED" and "dead-host lost" in store.get(dead).note
    ex = _executor(store, ScriptedEngine(), worker="w3")
    while ex.poll_once():
        pass
    assert store.get(dead).state == store.get(lost).state == "SUCCEEDED"
    assert store.get(dead).attempts == 2


def test_at_start_an_executor_sends_an_unsent_job_and_takes_back_one_a_dead_local_executor_held(
    store: JobStore,
) -> None:
    import socket

    unsent = _submit(store)  # recorded, then the cloud went down before its message went out
    held = _submit(store)
    _drain(store, store.queue_url)
    ended = subprocess.Popen(["true"])  # a process id of this host that has certainly ended
    ended.wait()
    dead_worker = f"{socket.gethostname()}-{ended.pid}"
    time.sleep(0.2)
    assert store.claim(held, dead_worker) is not None
    time.sleep(6)  # older than the start's 5 s, far younger than the usual 600 s / 300 s
    ex = _executor(store, ScriptedEngine(), worker="w-start")
    runner = threading.Thread(target=ex.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 120
    while {store.get(unsent).state, store.get(held).state} != {"SUCCEEDED"} and time.monotonic() < deadline:
        time.sleep(0.5)
    ex.stopping.set()
    runner.join(60)
    assert store.get(unsent).state == "SUCCEEDED"
    assert store.get(held).state == "SUCCEEDED" and store.get(held).attempts == 2


def test_reconcile_resends_a_lost_message_while_other_jobs_run_and_wait(store: JobStore) -> None:
    running = _submit(store)
    taken = store.sqs.receive_message(QueueUrl=store.queue_url, VisibilityTimeout=300)["Messages"][0]
    assert json.loads(taken["Body"])["job_id"] == running
    assert store.claim(running, "busy-host") is not None  # its message stays in flight while it runs
    orphan = _submit(store)
    _drain(store, store.queue_url)  # the orphan's message is lost; the running job's is in flight
    waiting = _submit(store)  # a job waiting its turn, with its message in the queue
    done = store.reconcile(queued_stale_s=0, heartbeat_stale_s=3600)
    assert orphan in done["resent"] and waiting not in done["resent"]
    assert store.reconcile(queued_stale_s=3600, heartbeat_stale_s=3600)["resent"] == []  # once, not every pass
    store.finish(running, "busy-host", "SUCCEEDED", result={"psnr": 1.0})


def test_reconcile_fails_a_job_that_keeps_losing_its_executor(store: JobStore) -> None:
    job_id = _submit(store)
    _drain(store, store.queue_url)
    store.claim(job_id, "flaky")
    time.sleep(0.2)
    assert store.reconcile(heartbeat_stale_s=0.1, max_attempts=1)["failed"] == [job_id]
    job = store.get(job_id)
    assert job.state == "FAILED" and "after 1 attempts" in job.error


@pytest.mark.slow
def test_an_executor_started_before_the_stacks_waits_for_them_without_an_error(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    log = tmp_path / "executor.log"
    env = {**os.environ, "SKYDECK_HOME": str(home.root), "SKYDECK_PROFILE": "local"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "executor", "run", "--wait", "1"], stdout=out, stderr=out, env=env
        )
    try:

        def wait_for(text: str) -> str:
            deadline = time.time() + 60
            while time.time() < deadline:
                seen = log.read_text()
                if text in seen:
                    return seen
                assert proc.poll() is None, f"the executor exited: {seen}"
                time.sleep(0.2)
            raise AssertionError(f"never logged {text!r}: {log.read_text()}")

        first = wait_for("waiting for the stacks")
        assert "stack infra is NOT_DEPLOYED" in first and "error" not in first.lower()
        Context.create(None, home).stacks.deploy("infra")
        wait_for("serving its jobs queue")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "error" not in log.read_text().lower()
    finally:
        if proc.poll() is None:
            proc.kill()
        control.down(home)


class GatedEngine(ScriptedEngine):
    """Runs until the test opens the gate, so the test can break the cloud under a running job."""

    def __init__(self) -> None:
        super().__init__(steps=1)
        self.started = threading.Event()
        self.gate = threading.Event()

    def run(self, ctx):  # noqa: ANN001, ANN201
        self.started.set()
        while not self.gate.wait(0.1):
            ctx.check()
        return super().run(ctx)


@pytest.mark.slow
def test_the_executor_survives_a_local_cloud_restart_under_a_running_job(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    control.up(home, workers=0)
    try:
        ctx = Context.create(None, home)
        ctx.stacks.deploy("infra")
        store = ctx.jobs.store
        first = store.submit(parse_job({"scene": "lego"})).job_id
        engine = GatedEngine()
        config = ExecutorConfig(wait_s=1, progress_every_s=0.2, extend_every_s=0.5, reconcile_every_s=3600)
        executor = Executor(store, {engine.name: engine}, config, worker_id="survivor")
        died: list[BaseException] = []

        def serve() -> None:
            try:
                executor.run()
            except BaseException as exc:  # noqa: BLE001 - recorded: the test fails on it
                died.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert engine.started.wait(30)
        control.down(home)  # unreachable: heartbeats and polls fail for a while
        time.sleep(2)
        control.up(home, workers=0)  # receipt handles from before the restart are void now
        engine.gate.set()
        deadline = time.time() + 60
        while time.time() < deadline and store.get(first).state != "SUCCEEDED":
            time.sleep(0.2)
        assert store.get(first).state == "SUCCEEDED"
        second = store.submit(parse_job({"scene": "lego"})).job_id
        while time.time() < deadline and store.get(second).state != "SUCCEEDED":
            time.sleep(0.2)
        assert not died, f"the executor exited: {died[0]!r}"
        assert store.get(second).state == "SUCCEEDED", "the executor stopped serving after the restart"
        executor.stopping.set()
        thread.join(timeout=30)
    finally:
        control.down(home)


def test_a_job_run_again_keeps_the_log_of_its_earlier_attempt(store: JobStore, tmp_path: Path) -> None:
    from gpu_executor.storage import LocalStorage

    storage = LocalStorage(tmp_path / "results")
    job_id = _submit(store)
    config = ExecutorConfig(wait_s=1, progress_every_s=0.2, extend_every_s=0.5)
    first = Executor(store, {"scripted": ScriptedEngine(steps=100, step_s=0.05)}, config, "w1", storage)
    runner = threading.Thread(target=first.poll_once)
    runner.start()
    _wait_for(lambda: store.get(job_id).state == "RUNNING")
    first.stopping.set()  # handed back to the queue
    runner.join(timeout=10)
    second = Executor(store, {"scripted": ScriptedEngine()}, config, "w2", storage)
    assert second.poll_once()
    log = storage.read(job_id, "job.log").decode()
    assert "claimed by w1 (attempt 1)" in log and "claimed by w2 (attempt 2)" in log
    assert log.index("attempt 1") < log.index("attempt 2") and log.rstrip().endswith("}")


def test_an_instance_running_a_job_is_protected_from_scale_in_until_it_ends(
    exec_ctx: Context, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a fleet host the executor marks its instance protected while it holds a job (the group scales
    on queued plus running jobs and must not take a busy instance), and clears the mark after."""
    from gpu_executor.scale_in import ScaleInProtection

    ec2 = exec_ctx.clients.client("ec2")
    autoscaling = exec_ctx.clients.client("autoscaling")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="protect-test", LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="protect-test-executors", MinSize=1, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"}, AvailabilityZones=["us-east-1a"],
    )  # fmt: skip
    instance = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["protect-test-executors"])[
        "AutoScalingGroups"
    ][0]["Instances"][0]["InstanceId"]

    def protected() -> bool:
        found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        return bool(found[0]["ProtectedFromScaleIn"])

    monkeypatch.delenv("SKYDECK_SCALE_IN_PROTECTION", raising=False)
    assert ScaleInProtection.from_environment(autoscaling) is None  # off unless the fleet's user data says
    monkeypatch.setenv("SKYDECK_SCALE_IN_PROTECTION", "1")
    monkeypatch.setenv("SKYDECK_INSTANCE_ID", instance)
    # an executor killed mid-job left its mark: a new one starting on the instance clears it
    autoscaling.set_instance_protection(
        InstanceIds=[instance], AutoScalingGroupName="protect-test-executors", ProtectedFromScaleIn=True
    )
    protection = ScaleInProtection.from_environment(autoscaling)
    assert protection is not None and protection.group == "protect-test-executors"
    job_id = store.submit(parse_job({"scene": "lego"})).job_id
    engine = GatedEngine()
    executor = Executor(
        store, {engine.name: engine}, ExecutorConfig(wait_s=1), worker_id="fleet-1", protection=protection
    )
    thread = threading.Thread(target=executor.run, kwargs={"once": True}, daemon=True)
    assert not protected()
    thread.start()
    assert engine.started.wait(30)
    assert protected(), "a busy instance must be protected from scale-in"
    engine.gate.set()
    thread.join(timeout=60)
    assert store.get(job_id).state == "SUCCEEDED"
    assert not protected(), "an idle instance must be free to go again"
    monkeypatch.setenv("SKYDECK_INSTANCE_ID", "i-0000000000000dead")
    assert ScaleInProtection.from_environment(autoscaling) is None  # in no group: off, with a warning


def test_an_ended_job_keeps_no_stale_note_and_lists_its_last_iteration(store: JobStore) -> None:
    from backend.interface import Job

    # re-queued by a stopping executor, then cancelled while queued: "re-queued" was still its note
    job_id = _submit(store)
    assert store.claim(job_id, "w1") is not None
    assert store.release(job_id, "w1", "executor stopped; job re-queued")
    assert store.get(job_id).note == "executor stopped; job re-queued"
    cancelled = store.cancel(job_id)
    assert cancelled.state == "CANCELLED" and store.get(job_id).note is None
    # a finished job's last progress may be older than its end: the list showed iteration 123 of 150
    job_id = _submit(store)
    store.claim(job_id, "w1")
    store.release(job_id, "w1", "executor stopped; job re-queued")
    store.claim(job_id, "w2")
    store.heartbeat(job_id, "w2", {"iteration": 123, "n_iters": 150})
    store.finish(job_id, "w2", "SUCCEEDED", result={"iterations": 150, "psnr": 30.0})
    record = store.get(job_id)
    assert record.note is None and Job.from_record(record).iteration == 150


def test_a_job_whose_executor_was_killed_says_so_and_names_memory(
    store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the kernel's out-of-memory killer sends SIGKILL: the job used to end "is gone (its process ended)"
    # and nothing said memory. The local cloud's pool records how each executor ended; the next says so.
    import socket

    from backend.localcloud.executors import ExecutorPool
    from gpu_executor.executor import _gone_from_this_host

    pool = ExecutorPool(tmp_path, tmp_path / "logs", 0, None, "")  # type: ignore[arg-type]  # reap needs no metadata service
    monkeypatch.setenv("SKYDECK_EXECUTOR_EXITS", str(pool.exits_dir))
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    pool.reap(victim)
    ended = subprocess.Popen(["true"])  # and one that exited by itself, with no record of how
    ended.wait()
    job_id, other = _submit(store), _submit(store)
    _drain(store, store.queue_url)
    host = socket.gethostname()
    assert store.claim(job_id, f"{host}-{victim.pid}") is not None
    assert store.claim(other, f"{host}-{ended.pid}") is not None
    done = store.reconcile(queued_stale_s=3600, heartbeat_stale_s=3600, worker_gone=_gone_from_this_host)
    assert set(done["requeued"]) == {job_id, other}
    note = store.get(job_id).note
    assert "was killed by SIGKILL" in note and "out-of-memory killer" in note and "lower reso or batch_size" in note
    assert store.get(other).note.endswith("is gone (its process ended)")
    _drain(store, store.queue_url)


def test_the_executors_own_log_follows_its_job_between_start_and_end(
    store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    # the Logs screen showed an executor's log stopping at executor_started while it trained a job
    job_id = _submit(store)
    with caplog.at_level("INFO", logger="skydeck.executor"):
        assert _executor(store, ScriptedEngine()).poll_once()
    said = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    lines = [e["says"] for e in said if e.get("event") == "job" and e.get("job_id") == job_id]
    assert any(line.startswith("claimed by w1") for line in lines)
    assert any(line.startswith("progress ") for line in lines)
    assert lines[-1].startswith("SUCCEEDED")
