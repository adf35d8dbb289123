"""The local cloud process: moto + the journal + the Lambda runtime + the jobs API front.

Started detached by `skydeck local up` (python -m backend.localcloud.server). It replays its journal,
puts back queued messages, then serves, and writes its state file last so that "state file exists"
means "ready". SIGTERM stops it cleanly; after a kill -9 the next start recovers from the journal.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.sqs.models import sqs_backends
from werkzeug.serving import make_server
from werkzeug.test import Client

from backend.core.local_credentials import LocalCredentials
from backend.core.paths import Home
from backend.core.profiles import LOCAL_REGION
from backend.localcloud import cfn_fixes, fast_sqs, moto_speedups, public_parameters, sns_fixes
from backend.localcloud.api_front import READ_TIMEOUT_S, ApiFront, TokenFile, serve
from backend.localcloud.compaction import COMPACT_AT_BYTES, DEFAULT_COMPACT_AT, CompactionReport, compact
from backend.localcloud.gateway import Gateway
from backend.localcloud.iam.sessions import RoleSessions
from backend.localcloud.imds import MetadataService
from backend.localcloud.instance import AlreadyRunning, ServerLock
from backend.localcloud.journal import JOURNAL_DAMAGED_EXIT, Journal, JournalDamaged, Recorded
from backend.localcloud.lambda_runtime import LambdaRuntime
from backend.localcloud.replay import Answer, replay

log = logging.getLogger("skydeck.localcloud")


def free_port(preferred: int | None = None) -> int:
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def ensure_token(home: Home) -> str:
    path = home.local_token_file
    if not path.exists():
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    os.chmod(path, 0o600)
    return path.read_text().strip()


def _previous_ports(home: Home) -> dict[str, int]:
    try:
        return json.loads((home.local_dir / "ports.json").read_text())
    except (OSError, ValueError):
        return {}


def _restore_messages(journal: Journal) -> int:
    restored, missing = 0, []
    for mid, account, region, queue_name, body, attrs, sent_ms, count in journal.stored_messages():
        try:
            queue = sqs_backends[account][region].get_queue(queue_name)
        except Exception:
            missing.append(mid)  # its queue was deleted: the message went with it
            continue
        fast_sqs.restore_message(queue, mid, body, attrs, sent_ms, count)
        restored += 1
    journal.forget_messages(missing)
    return restored


def compact_at() -> int:
    raw = os.environ.get("SKYDECK_JOURNAL_COMPACT_AT", "")
    return int(raw) if raw.isdigit() else DEFAULT_COMPACT_AT


def worth_compacting(journal: Journal, records: int) -> bool:
    """Many records, or few large ones: a few hundred object writes of megabytes each replay as slowly
    as thousands of small ones (an hour of SDS-Inf runs was 1,755 records and 144 MB)."""
    try:
        size = sum(p.stat().st_size for p in journal.path.parent.glob(journal.path.name + "*"))
    except OSError:
        size = 0
    return records > compact_at() or size > COMPACT_AT_BYTES


def _table_items(client: Client, regions: set[str]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Every DynamoDB table's items in these regions, read through moto's own API."""
    found = []
    for region in sorted(regions):
        headers = {
            "content-type": "application/x-amz-json-1.0",
            "authorization": f"AWS4-HMAC-SHA256 Credential=compact/20260101/{region}/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=compact",
        }

        def call(action: str, body: dict[str, Any], headers: dict[str, str] = headers) -> dict[str, Any]:
            resp = client.post(
                "/", headers={**headers, "x-amz-target": f"DynamoDB_20120810.{action}"}, data=json.dumps(body)
            )
            if resp.status_code != 200:
                raise RuntimeError(f"{action} failed while compacting: {resp.get_data(as_text=True)[:200]}")
            return json.loads(resp.get_data())

        tables: list[str] = []
        listing: dict[str, Any] = {}
        while True:  # a page holds at most 100 names: a table left out would lose its items
            page = call("ListTables", listing)
            tables += page.get("TableNames", [])
            if not page.get("LastEvaluatedTableName"):
                break
            listing = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
        for table in tables:
            items: list[dict[str, Any]] = []
            start: dict[str, Any] | None = None
            while True:
                page = call("Scan", {"TableName": table, **({"ExclusiveStartKey": start} if start else {})})
                items += page.get("Items", [])
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
            found.append((region, table, items))
    return found


def lambda_runtime_note() -> dict[str, Any]:
    """The Python the templates' functions name beside the one the local runtime runs them with."""
    import re

    from backend.core.paths import stacks_dir

    named: set[str] = set()
    for template in sorted(stacks_dir().glob("*.yaml")):
        named.update(re.findall(r"^\s*Runtime:\s*(python[0-9.]+)\s*$", template.read_text(), re.MULTILINE))
    local = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return {"local": local, "templates": sorted(named), "matches": named <= {local}}


class TimedMotoRequestHandler(MotoRequestHandler):
    """moto's handler with a read timeout from the first byte: a connection that never finishes its
    headers (or its body) is closed after READ_TIMEOUT_S instead of holding a thread for good."""

    timeout = READ_TIMEOUT_S


class LocalCloud:
    def __init__(self, home: Home, region: str = LOCAL_REGION, workers: int = 0) -> None:
        self.home = home.ensure()
        self.region = region
        self.workers = workers
        self.stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> dict[str, Any]:
        from moto.moto_api._internal import mock_random

        mock_random.seed(20260101)  # stable ids across replays
        ports = _previous_ports(self.home)
        moto_port = free_port(ports.get("moto"))
        api_port = free_port(ports.get("api"))
        imds_port = free_port(ports.get("imds"))
        endpoint = f"http://127.0.0.1:{moto_port}"
        credentials = LocalCredentials.load_or_create(self.home.local_credentials_file)
        self.journal = Journal(self.home.local_journal)
        fast_sqs.install(self.journal)
        cfn_fixes.install()
        sns_fixes.install()
        moto_speedups.install()
        public_parameters.install()
        base_env = {
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": endpoint,
        }
        self.runtime = LambdaRuntime(self.home.local_dir / "lambda", base_env, self.home.logs_dir / "lambda")
        self.gateway = Gateway(DomainDispatcherApplication(create_backend_app), self.journal, self.runtime, self.region)
        self.gateway.sessions = RoleSessions(self.home.local_dir / "sessions.json")
        self.runtime.role_env = self._role_env
        self.imds = MetadataService(self.gateway.sessions, DEFAULT_ACCOUNT_ID, self.region)

        t0 = time.time()
        client = Client(self.gateway)

        def send(rec: Recorded) -> Answer:
            resp = client.open(rec.path, method=rec.method, query_string=rec.query, headers=rec.headers, data=rec.body)
            return Answer(resp.status_code, resp.get_data())

        progress_file = self.home.local_replay_progress

        def progress(done: int, total: int) -> None:  # `local up` waits as long as this moves
            progress_file.write_text(json.dumps({"replayed": done, "total": total}))

        stats = replay(self.journal, send, self.gateway.ids, progress).to_dict()
        progress_file.unlink(missing_ok=True)
        self.replay_client = client
        stats["messages"] = _restore_messages(self.journal)
        if worth_compacting(self.journal, stats["replayed"]) and not stats["failed"]:
            # compacted only after a clean replay: a record that failed must stay for a person to see
            stats["compacted"] = self.compact().to_dict()
        stats["seconds"] = round(time.time() - t0, 3)
        self.gateway.recording = True
        self.gateway.credentials = credentials  # from now on, every request must be signed with them

        self.moto_server = make_server(
            "127.0.0.1", moto_port, self.gateway, threaded=True, request_handler=TimedMotoRequestHandler
        )
        ensure_token(self.home)
        self.front = ApiFront(self.runtime, self.region, TokenFile(self.home.local_token_file), credentials=credentials)
        self.api_server = serve(self.front, api_port)
        self.imds_url = f"http://127.0.0.1:{self.imds.serve(imds_port)}"
        for target in (self.moto_server.serve_forever, self.api_server.serve_forever):
            th = threading.Thread(target=target, daemon=True)
            th.start()
            self._threads.append(th)
        (self.home.local_dir / "ports.json").write_text(
            json.dumps({"moto": moto_port, "api": api_port, "imds": imds_port})
        )
        state = {
            "pid": os.getpid(),
            "pgid": os.getpgrp(),
            "endpoint": endpoint,
            "api_base": f"http://127.0.0.1:{api_port}",
            "region": self.region,
            "started_at": time.time(),
            "restored": stats,
            "parts": {
                "moto": {"pid": os.getpid(), "url": endpoint},
                "lambda": {"pid": os.getpid()},
                "api": {"pid": os.getpid(), "url": f"http://127.0.0.1:{api_port}"},
                "imds": {"pid": os.getpid(), "url": self.imds_url},
            },
            "imds": self.imds_url,
            "executor_workers": self.workers,
            "lambda_runtime": lambda_runtime_note(),
        }
        tmp = self.home.local_state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.home.local_state_file)
        log.info("local cloud ready on %s (api %s), restored %s", endpoint, api_port, stats)
        return state

    def _role_env(self, role_arn: str, function: str) -> tuple[dict[str, str], float]:
        """A Lambda worker's credentials: a fresh session of its function's execution role."""
        session = self.gateway.sessions.mint(role_arn, function)
        return session.env(), session.expires_at

    def start_workers(self) -> None:
        """After the state file is written: the workers find the cloud through it."""
        from backend.localcloud.executors import ExecutorPool

        self.pool = ExecutorPool(self.home.root, self.home.logs_dir, self.workers, self.imds, self.imds_url)
        self.pool.start()

    def compact(self) -> CompactionReport:
        """Only while nothing else can reach moto: at start before serving, or at stop after it."""
        self.gateway.credentials = None  # the in-process reads below carry no signature
        self.gateway.recording = False
        report = compact(self.journal, lambda regions: _table_items(self.replay_client, regions))
        log.info("journal compacted: %s", report.to_dict())
        return report

    def stop(self) -> None:
        self.stopped.set()
        if hasattr(self, "pool"):
            self.pool.stop()
        for server in (getattr(self, "api_server", None), getattr(self, "moto_server", None)):
            if server is not None:
                server.shutdown()
        if hasattr(self, "imds"):
            self.imds.stop()
        if hasattr(self, "runtime"):
            self.runtime.shutdown()
        serving = getattr(self, "moto_server", None) is not None
        if serving and worth_compacting(self.journal, self.journal.count()["requests"]):
            # nothing writes any more: leave a short journal for the next start
            try:
                self.compact()
            except Exception:  # noqa: BLE001 - the long journal still replays; never lose it over this
                log.exception("journal compaction at stop failed; the journal is kept as it was")
        try:
            state = json.loads(self.home.local_state_file.read_text())
            if state.get("pid") == os.getpid():
                self.home.local_state_file.unlink()
        except (OSError, ValueError):
            pass
        if hasattr(self, "journal"):
            self.journal.close()


class SkippedResourceNote(logging.Filter):
    """moto warns on every deploy about resource types its CloudFormation skips (bucket policies,
    scaling policies, event invoke configs). They are expected and harmless here: say so once per type."""

    _PREFIX = "No Moto CloudFormation support for "

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(self._PREFIX):
            return True
        kind = message[len(self._PREFIX) :].strip()
        if kind in self.seen:
            return False
        self.seen.add(kind)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = (
            "%s is skipped by the local cloud (it applies on AWS only; expected, harmless)",
            (kind,),
        )
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="skydeck's embedded local cloud (started by `skydeck local up`)")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=0, help="executor workers to keep running beside the cloud")
    args = parser.parse_args(argv)
    if args.home:
        os.environ["SKYDECK_HOME"] = str(args.home)
    # everything the cloud and its workers write under the home (journal, state, logs, functions) is
    # the user's alone
    os.umask(0o077)
    home = Home.from_env()
    home.ensure().tighten()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    # moto warns (and logs) for each resource type its CloudFormation does not model; the log line the
    # filter above turns into "skipped ... harmless" says it once: the warning would say it again
    warnings.filterwarnings("ignore", message="Tried to parse .* but it's not supported", category=UserWarning)
    for noisy in ("werkzeug", "botocore", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("moto").addFilter(SkippedResourceNote())
    lock = ServerLock(home.ensure().local_lock)
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        log.error("%s", exc)
        return 3
    cloud = LocalCloud(home, workers=max(0, args.workers))
    signal.signal(signal.SIGTERM, lambda *_: cloud.stopped.set())
    signal.signal(signal.SIGINT, lambda *_: cloud.stopped.set())
    try:
        cloud.start()
        cloud.start_workers()
        cloud.stopped.wait()
    except JournalDamaged as exc:
        log.error("%s", exc)
        return JOURNAL_DAMAGED_EXIT
    finally:
        cloud.stop()
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
