"""A load-and-faults workload for the jobs pipeline on the local cloud, shared by the CI test (short
form) and `benchmarks/load_bench.py` (full size).

Clients submit jobs through the API (each with an Idempotency-Key, retrying until they get an
answer, as a careful script would) while executor processes with a fast engine drain the queue. An
executor is killed -9 (and a new one started) every few seconds and the local cloud itself is killed
-9 and started again at random points. At the end every submitted job must exist once and have
succeeded; none may be lost, made twice or left behind; no executor may have exited on its own.

    python -m tests.load executor HOME ID STEP_S     (one executor process; the workload starts them)
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.paths import Home
from backend.localcloud import control

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@dataclass(frozen=True)
class LoadPlan:
    jobs: int = 2000
    clients: int = 16
    executors: int = 4
    kill_executor_every_s: float = 20.0
    cloud_kills: int = 2
    step_s: float = 0.05  # the fast engine: three steps of this long
    drain_timeout_s: float = 600.0
    seed: int = 0


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else (values or [0.0])[0]


@dataclass
class LoadReport:
    plan: LoadPlan
    submitted: int = 0
    submit_s: float = 0.0
    api_ms: list[float] = field(default_factory=list)
    retries: int = 0
    end_to_end_s: list[float] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    ran_again: int = 0
    executors_killed: int = 0
    executors_exited_on_their_own: list[str] = field(default_factory=list)
    executors_alive: int = 0
    replay_s: list[float] = field(default_factory=list)
    drain_s: float = 0.0

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.failed or self.executors_exited_on_their_own)

    def percentile(self, q: int) -> float:
        """The API latency's q-th percentile, in ms."""
        return _pct(self.api_ms, q)

    @property
    def cold_answers(self) -> int:
        """How many of the first answers count as cold: the API function's workers start on the first
        burst (one per request in flight, up to the front's bound), and each start imports boto3."""
        return 4 * self.plan.clients

    def warm_percentile(self, q: int) -> float:
        """The q-th percentile of the answers after the cold ones (in the order they came), in ms."""
        return _pct(self.api_ms[self.cold_answers :], q)

    def lines(self) -> list[str]:
        pct = _pct

        p = self.plan
        return [
            f"load: {p.jobs} jobs from {p.clients} clients, {p.executors} executors (one killed -9 every "
            f"{p.kill_executor_every_s:.0f}s), local cloud killed -9 {p.cloud_kills} times",
            f"submit throughput   {self.submitted / max(self.submit_s, 1e-9):8.1f} jobs/s "
            f"({self.submitted} in {self.submit_s:.1f}s; {self.retries} retried submits)",
            f"API latency         p50 {pct(self.api_ms, 50):7.1f} ms   p99 {pct(self.api_ms, 99):7.1f} ms",
            f"  after the first {self.cold_answers} answers (workers warm): p50 {self.warm_percentile(50):.1f} ms"
            f"   p99 {self.warm_percentile(99):.1f} ms",
            f"end to end          p50 {pct(self.end_to_end_s, 50):7.2f} s    p99 {pct(self.end_to_end_s, 99):7.2f} s"
            f"   (all drained {self.drain_s:.1f}s after the last submit)",
            f"jobs lost {len(self.lost)}, made twice {len(self.duplicated)}, stuck {len(self.stuck)}, "
            f"failed {len(self.failed)}; run again after a kill: {self.ran_again}",
            f"executors killed {self.executors_killed}, exited on their own "
            f"{len(self.executors_exited_on_their_own)}, alive at the end {self.executors_alive}/{p.executors}",
            "local cloud restarts (replay + start): " + ", ".join(f"{s:.1f}s" for s in self.replay_s),
        ]


class _Executors:
    """The executor processes: started, killed -9 at random, replaced, and checked for any that died
    on their own (which no AWS error may cause)."""

    def __init__(self, home: Home, count: int, step_s: float, rng: random.Random) -> None:
        self.home, self.step_s, self.rng = home, step_s, rng
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()
        self.serial = 0
        self.log_dir = home.root / "load-executors"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            self.start()

    def start(self) -> None:
        self.serial += 1
        name = f"load-{self.serial}"
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        env = {**os.environ, "SKYDECK_HOME": str(self.home.root)}
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.load", "executor", str(self.home.root), name, str(self.step_s)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
        log.close()

    def kill_one(self) -> None:
        alive = [n for n, p in self.procs.items() if p.poll() is None]
        if not alive:
            return
        name = self.rng.choice(alive)
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()
        self.killed.add(name)
        self.start()

    def exited_on_their_own(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None and n not in self.killed]

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    def completions(self) -> Counter[str]:
        done: Counter[str] = Counter()
        for path in self.log_dir.glob("*.done"):
            done.update(line for line in path.read_text().splitlines() if line)
        return done


def _submit(url: str, headers: dict[str, str], tag: str, deadline: float) -> tuple[float, int]:
    """One job, retried until the API answers (the key keeps a retry from making a second job).
    Returns (the answered request's ms, retries)."""
    body = json.dumps({"scene": "lego", "name": tag, "config": {"n_iters": 3}}).encode()
    retries, pause = 0, 0.1
    while True:
        request = urllib.request.Request(
            url + "jobs", data=body, method="POST", headers={**headers, "Idempotency-Key": tag}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                if resp.status == 201:
                    return (time.perf_counter() - started) * 1000, retries
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                raise AssertionError(f"{tag}: the API refused a valid job: {exc.code} {exc.read()[:200]!r}") from None
        except (OSError, TimeoutError):
            pass  # the cloud is restarting: try again
        if time.time() > deadline:
            raise AssertionError(f"{tag}: no answer from the API before the deadline")
        retries += 1
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _api(home: Home) -> tuple[str, dict[str, str]]:
    from backend.context import Context
    from backend.jobs.api_endpoint import api_endpoint

    info = api_endpoint(Context.create(None, home))
    return info["url"], info["headers"]


def _items(home: Home) -> list[dict[str, Any]]:
    from backend.context import Context

    ctx = Context.create(None, home)
    ddb = ctx.clients.client("dynamodb")
    table = ctx.stacks.outputs("infra")["TableName"]
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for raw in page["Items"]:
            items.append({k: next(iter(v.values())) for k, v in raw.items()})
    return items


def _restart_cloud(home: Home) -> float:
    os.kill(control.status(home).state["pid"], signal.SIGKILL)
    time.sleep(0.2)
    started = time.perf_counter()
    control.up(home, workers=0)
    return time.perf_counter() - started


def run(home: Home, plan: LoadPlan, say: Any = print) -> LoadReport:
    """The workload on a fresh home: set up, load and break it, drain, and count."""
    from backend.context import Context

    rng = random.Random(plan.seed)
    report = LoadReport(plan)
    control.up(home, workers=0)
    ctx = Context.create(None, home)
    say("deploying infra and api")
    # a received job hides for 30 s: a job whose executor is killed before its first visibility
    # extension comes back that soon; executors reconcile every few seconds
    ctx.stacks.deploy("infra", {"VisibilityTimeout": "30", "MaxReceiveCount": "20"})
    ctx.stacks.deploy("api")
    url, headers = _api(home)
    executors = _Executors(home, plan.executors, plan.step_s, rng)
    tags = [f"load-{plan.seed}-{n:05d}" for n in range(plan.jobs)]
    latencies: list[float] = []
    retries = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()
    deadline = time.time() + plan.drain_timeout_s + 600

    def client(mine: list[str]) -> None:
        try:
            for tag in mine:
                ms, tries = _submit(url, headers, tag, deadline)
                with lock:
                    latencies.append(ms)
                    retries[0] += tries
        except BaseException as exc:  # noqa: BLE001 - reported by the workload
            errors.append(exc)

    say(f"submitting {plan.jobs} jobs from {plan.clients} clients")
    started = time.time()
    threads = [threading.Thread(target=client, args=(tags[i :: plan.clients],)) for i in range(plan.clients)]
    for t in threads:
        t.start()
    # the cloud dies at random points of the submit phase (after a random share of the jobs is in);
    # executors die on a schedule throughout
    cloud_kills = sorted(int(rng.uniform(0.15, 0.85) * plan.jobs) for _ in range(plan.cloud_kills))
    next_executor_kill = plan.kill_executor_every_s
    while any(t.is_alive() for t in threads):
        elapsed = time.time() - started
        with lock:
            answered = len(latencies)
        if cloud_kills and answered >= cloud_kills[0]:
            cloud_kills.pop(0)
            report.replay_s.append(_restart_cloud(home))
            say(f"local cloud killed -9 after {answered} jobs, started again in {report.replay_s[-1]:.1f}s")
        if elapsed >= next_executor_kill:
            executors.kill_one()
            next_executor_kill += plan.kill_executor_every_s
        time.sleep(0.02)
    for t in threads:
        t.join()
    report.submit_s = time.time() - started
    for _ in cloud_kills:  # the submit phase was shorter than expected: the remaining kills come now
        report.replay_s.append(_restart_cloud(home))
    if errors:
        raise errors[0]
    report.submitted, report.api_ms, report.retries = len(latencies), latencies, retries[0]
    say(f"submitted in {report.submit_s:.1f}s; draining")
    drained_from = time.time()
    while True:
        items = [i for i in _items(home) if str(i.get("name", "")).startswith(f"load-{plan.seed}-")]
        open_jobs = [i for i in items if i.get("state") not in TERMINAL]
        if not open_jobs and len(items) >= len(tags):
            break
        if time.time() - drained_from > plan.drain_timeout_s:
            break
        if time.time() - drained_from >= report.drain_s + plan.kill_executor_every_s:
            executors.kill_one()
            report.drain_s = time.time() - drained_from
        time.sleep(1.0)
    report.drain_s = time.time() - drained_from
    report.executors_exited_on_their_own = executors.exited_on_their_own()
    report.executors_alive = sum(1 for p in executors.procs.values() if p.poll() is None)
    report.executors_killed = len(executors.killed)
    executors.stop()
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_tag.setdefault(str(item["name"]), []).append(item)
    report.lost = [t for t in tags if t not in by_tag]
    report.duplicated = [t for t, found in by_tag.items() if len(found) > 1]
    report.stuck = [str(i["job_id"]) for i in items if i.get("state") not in TERMINAL]
    report.failed = [f"{i['job_id']}: {i.get('error')}" for i in items if i.get("state") == "FAILED"]
    report.end_to_end_s = [
        float(i["finished_at"]) - float(i["created_at"]) for i in items if i.get("state") == "SUCCEEDED"
    ]
    report.ran_again = sum(1 for n in executors.completions().values() if n > 1)
    return report


# -- one executor process --------------------------------------------------------------------------
class _FastEngine:
    """Three steps of `step_s`, progress after each; notes each finished run for the report."""

    name = "fast"

    def __init__(self, step_s: float, done_file: Path) -> None:
        self.step_s, self.done_file = step_s, done_file

    def available(self) -> tuple[bool, str]:
        return True, ""

    def run(self, ctx: Any) -> dict[str, Any]:
        for i in range(3):
            ctx.check()
            time.sleep(self.step_s)
            ctx.report({"iteration": i + 1, "psnr": 20.0 + i})
        with open(self.done_file, "a") as f:
            f.write(ctx.job_id + "\n")
        return {"psnr": 30.0, "iterations": 3}


def _serve(home_dir: str, name: str, step_s: float) -> None:
    from backend.context import Context
    from gpu_executor.executor import Executor, ExecutorConfig

    home = Home(Path(home_dir))
    while True:  # started while the cloud restarts: wait for it, as `skydeck executor run` does
        try:
            store = Context.create(None, home).jobs.store
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.5)
    engine = _FastEngine(step_s, home.root / "load-executors" / f"{name}.done")
    config = ExecutorConfig(
        wait_s=1, visibility_s=20, extend_every_s=3, progress_every_s=0.5, reconcile_every_s=5,
        heartbeat_stale_s=10, queued_stale_s=30, max_backoff_s=2,
        workdir=home.root / "load-executors" / f"{name}-work",
    )  # fmt: skip
    executor = Executor(store, {engine.name: engine}, config, worker_id=name)
    executor.install_signal_handlers()
    executor.run()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "executor":
        _serve(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(__doc__)
