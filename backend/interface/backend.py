"""`Backend`: everything the front ends do with one profile, as typed methods.

Each method says what it answers (a dataclass, or a dict where the answer is a document a script
reads as JSON) and raises SkydeckError's kinds with a message an operator can act on. The modules
behind it are imported inside the methods, so that importing the door stays cheap for a CLI that
only prints its --help.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.core.errors import ConfigError, NotFoundError
from backend.core.logs import Follower, LogSource
from backend.interface.records import Job, JobPage, MonitorSnapshot

if TYPE_CHECKING:
    from backend.context import Context
    from backend.core.presets import Preset
    from backend.core.profiles import Profile
    from backend.doctor import Check
    from backend.fleet.hosts import Fleet, FleetHosts
    from backend.jobs.batch import BatchPlan
    from backend.jobs.scenes import PushResult
    from backend.sdsinf.plans import RunLaunch, RunPlan
    from backend.sdsinf.results import ColumnComparison
    from backend.sdsinf.runs import SdsinfRuns
    from backend.stacks.service import Plan, StackEvent, StackInfo
    from lambda_src.jobs.schema import JobSpec
    from lambda_src.sdsinf.contracts import LiveMetric, RunSummary


class Backend:
    """Everything the console does, for one profile."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @classmethod
    def open(cls, profile: str | None = None, home: Path | None = None) -> Backend:
        from backend.context import Context
        from backend.core.paths import Home

        return cls(Context.create(profile, Home(home) if home else None))

    # -- profile and account ---------------------------------------------------------------------
    @property
    def profile(self) -> Profile:
        return self.ctx.profile

    def profiles(self) -> list[str]:
        from backend.core.profiles import load_profiles

        return sorted(load_profiles(self.ctx.home))

    def switch(self, name: str) -> Backend:
        return Backend.open(name, self.ctx.home.root)

    def account_id(self) -> str | None:
        """The AWS account behind the profile; None on the local cloud."""
        if self.ctx.profile.is_local:
            return None
        return str(self.ctx.clients.client("sts").get_caller_identity()["Account"])

    def ensure_local_cloud(self) -> None:
        if self.ctx.profile.is_local:
            from backend.localcloud import control

            control.up(self.ctx.home)

    def stop_local_cloud(self) -> bool:
        """Stop the local cloud this profile uses (its state is kept); False when it was not running."""
        from backend.localcloud import control

        return self.ctx.profile.is_local and control.down(self.ctx.home)

    def doctor(self) -> list[Check]:
        """The profile's checks: credentials, region, reachability, stacks - each with its fix."""
        from backend.doctor import run_checks

        return run_checks(self.ctx)

    def api_endpoint(self) -> dict[str, Any]:
        """Where the jobs API answers and how to authenticate: {url, headers, auth}."""
        from backend.jobs.api_endpoint import api_endpoint

        return api_endpoint(self.ctx)

    def serve_jobs(
        self, engine: str, wait_s: int, once: bool, on_waiting: Callable[[str], None], on_serving: Callable[[], None]
    ) -> int:
        """Serve the jobs queue from this machine, as a GPU host does, once the infra stack is deployed
        (`on_waiting` hears why not yet); answers how many jobs it handled."""
        from gpu_executor.engines import builtin_engines
        from gpu_executor.executor import Executor, ExecutorConfig, private_workdir

        self.ctx.stacks.wait_outputs("infra", on_waiting)
        # scratch under the home (0700), never a folder every home on the machine shares
        config = ExecutorConfig(
            engine=engine, wait_s=wait_s, workdir=private_workdir(self.ctx.home.cache_dir / "executor")
        )
        executor = Executor(
            self.ctx.jobs.store, builtin_engines(), config, storage=self.ctx.scenes.storage(config.workdir / "scenes")
        )
        executor.install_signal_handlers()
        on_serving()
        return executor.run(once=once)

    # -- fleet hosts ---------------------------------------------------------------------------------
    def _fleet(self) -> FleetHosts:
        from backend.fleet.hosts import FleetHosts

        return FleetHosts(self.ctx.stacks, self.ctx.clients)

    def fleet_hosts(self) -> Fleet:
        """Each fleet instance (and each boot record of one gone): AMI, type, boot state, heartbeat, job."""
        return self._fleet().list()

    def fleet_boot_log(self, instance_id: str) -> str:
        return self._fleet().boot_log(instance_id)

    def resume_fleet(self) -> Fleet:
        """Restore the group's sizes from its stack after a failed boot stopped it."""
        return self._fleet().resume()

    # -- jobs ----------------------------------------------------------------------------------------
    def jobs(self, state: str | None = None, limit: int = 50, next_token: str | None = None) -> JobPage:
        page = self.ctx.jobs.list(state=state, limit=limit, next_token=next_token)
        return JobPage([Job.from_record(r) for r in page.items], page.next_token)

    def resolve_job(self, job_id: str) -> str:
        """A full job id from any unique prefix of one (at least 4 characters)."""
        return self.ctx.jobs.resolve(job_id)

    def job(self, job_id: str) -> Job:
        return Job.from_record(self.ctx.jobs.get(job_id))

    def watch_jobs(
        self, job_id: str | None, interval_s: float, stop: threading.Event | None = None
    ) -> Iterator[Job | list[Job]]:
        """The job (or, without one, the newest page of jobs) each time it changes, until the job ends
        or `stop` is set."""
        for snapshot in self.ctx.jobs.watch(job_id, interval_s=interval_s, stop=stop):
            yield [Job.from_record(r) for r in snapshot] if isinstance(snapshot, list) else Job.from_record(snapshot)

    def reconcile_jobs(
        self, queued_after_s: float, heartbeat_after_s: float, max_attempts: int
    ) -> dict[str, list[str]]:
        """Re-send lost messages and re-queue (or fail) jobs whose executor went silent: {requeued, failed,
        resent} job ids."""
        return self.ctx.jobs.store.reconcile(queued_after_s, heartbeat_after_s, max_attempts)

    def cancel_job(self, job_id: str) -> Job:
        return Job.from_record(self.ctx.jobs.cancel(job_id))

    def compose_job(self, preset: Preset | None, scene: str | None, overrides: list[str]) -> JobSpec:
        """A job from a preset and `key=value` overrides on top of its values, as `skydeck jobs submit
        --preset` makes it (backend.core.presets.job_from_preset) - raises ConfigError."""
        from backend.core.presets import compose_job, job_from_preset

        if preset is None:
            return compose_job({}, scene=scene, overrides=overrides)
        return job_from_preset(preset, scene=scene, overrides=overrides)

    def submit_job(
        self,
        spec: JobSpec,
        check_scene: bool = True,
        force: bool = False,
        key: str | None = None,
        scene_hint: str = "",
    ) -> Job:
        """Queue a job; a pushed scene that is not in the data bucket is refused first (NotFoundError,
        `scene_hint` added to its message), and on the local cloud one estimated to train for hours on
        its CPU (ConfigError) unless `force`. `key` is the job's id to be: the same key again answers
        with that job (`Job.replayed`) instead of making a second."""
        if check_scene:
            self.ctx.scenes.check_exists(spec.scene, skip_hint=scene_hint)
        return Job.from_record(self.ctx.jobs.submit(spec, key=key, laptop_guard=not force))

    def validation_job(self, job_id: str, scene: str | None = None, engine: str = "auto") -> JobSpec:
        """The validation-only job of a succeeded training job: its checkpoint scored on `scene` (default
        its own), as the original's validation job does."""
        from lambda_src.jobs.schema import parse_job

        job_id = self.resolve_job(job_id)
        trained = self.job(job_id)
        if trained.state != "SUCCEEDED" or trained.checkpoint:
            raise ConfigError(f"job {job_id} is {trained.state}: only a succeeded training job has a checkpoint")
        name = f"validate-{trained.name or 'job'}"[:64]
        return parse_job({"name": name, "scene": scene or trained.scene, "checkpoint": job_id, "engine": engine})

    def job_log(self, job_id: str, tail_bytes: int | None = None, strict: bool = False) -> str | None:
        """The job's own log, or None while there is none; with `tail_bytes`, its last whole lines
        within that many bytes. The console reads any failure as "no log yet"; `strict` lets every
        failure but a missing log through, for a command to report."""
        try:
            raw = self.ctx.scenes.read_result(job_id, "job.log", tail=tail_bytes)
            if tail_bytes and len(raw) >= tail_bytes:
                raw = raw.split(b"\n", 1)[-1]  # the first line was cut by the range
            return raw.decode(errors="replace")
        except NotFoundError:
            return None
        except Exception:
            if strict:
                raise
            return None

    def job_preview(self, job_id: str) -> bytes | None:
        try:
            return self.ctx.scenes.read_result(job_id, "preview.png")
        except Exception:  # noqa: BLE001 - no preview yet (or not a torch job)
            return None

    def make_and_push_scene(self, name: str, directory: Path) -> str:
        """A synthetic scene written to `directory` (the same scene `skydeck data make-scene NAME` makes:
        make_scene's defaults), checked and pushed as `name`; returns where it went."""
        from gpu_executor.plenoxels.scene import make_scene

        make_scene(name, directory)
        result = self.ctx.scenes.push(directory, name)
        return f"scene {name}: {result.files} files ({result.bytes / 1e6:.1f} MB) in {result.uri}"

    def fetch_results(
        self, job_id: str, directory: Path, on_file: Callable[[str], None] | None = None, overwrite: bool = True
    ) -> list[Path]:
        """A job's results (checkpoint, renders, turntable.gif, metrics.json, its log) copied into
        `directory`, `on_file` told each name; with `overwrite` False, files already there are refused
        (ConfigError) before anything is written."""
        return self.ctx.scenes.fetch(job_id, directory, on_file=on_file or (lambda _: None), overwrite=overwrite)

    # -- scenes --------------------------------------------------------------------------------------
    def scenes(self) -> list[dict[str, Any]]:
        """The scenes in the data bucket: {name, uri, complete}."""
        return self.ctx.scenes.list()

    def push_scene(
        self,
        directory: Path,
        name: str,
        on_file: Callable[[str], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> PushResult:
        """Check a NeRF-synthetic scene directory and upload it as scenes/NAME/."""
        # either callback may be given alone: the one left out must still be callable
        return self.ctx.scenes.push(
            directory, name, on_file=on_file or (lambda _: None), on_total=on_total or (lambda _: None)
        )

    def generate_and_upload_sdsinf(
        self, name: str, directory: Path, neurons: int = 1024, layers: int = 120, inputs: int = 1000
    ) -> str:
        """A Graph Challenge-style network and inputs written to `directory`, uploaded as `name`."""
        from backend.sdsinf.data import generate

        made = generate(directory, neurons, layers, inputs, 0)
        info = self.upload_sdsinf(directory, neurons, layers, name)
        shape = f"{neurons} neurons x {layers} layers"
        return f"data {name}: {shape}, {info['inputs']} inputs, {made['categories']} categories"

    def load_batch(self, path: Path) -> BatchPlan:
        from backend.jobs.batch import load_plan

        return load_plan(path, self.ctx)

    def run_batch(self, plan: BatchPlan, dry_run: bool = False) -> list[dict[str, Any]]:
        from backend.jobs.batch import run

        return run(self.ctx, plan, dry_run=dry_run)

    def batch_leaderboard(self, plan: BatchPlan) -> list[dict[str, Any]]:
        """The batch's jobs, best held-out PSNR first."""
        from backend.jobs.batch import leaderboard

        return leaderboard(self.ctx, plan)

    def monitor(self, counts: dict[str, int] | None = None) -> MonitorSnapshot:
        from backend.jobs.monitor import snapshot

        snap = snapshot(self.ctx, counts=counts)
        return MonitorSnapshot(
            snap.at,
            snap.queue_visible,
            snap.queue_in_flight,
            snap.dead_letter,
            dict(snap.per_state),
            [Job.from_record(r) for r in snap.recent],
        )

    # -- presets -------------------------------------------------------------------------------------
    def presets(self, kind: str | None = None) -> list[Preset]:
        from backend.core.presets import list_presets

        return list_presets(self.ctx.home, kind)

    def preset(self, name: str) -> Preset:
        from backend.core.presets import get_preset

        return get_preset(self.ctx.home, name)

    # -- stacks --------------------------------------------------------------------------------------
    def stacks(self) -> list[StackInfo]:
        return self.ctx.stacks.list()

    def stack(self, short: str) -> StackInfo:
        return self.ctx.stacks.describe(short)

    def stack_events(self, short: str) -> list[StackEvent]:
        return self.ctx.stacks.events(short)

    def plan_stack(
        self, short: str, params: dict[str, str], on_event: Callable[[StackEvent], None] | None = None
    ) -> Plan:
        """A change set for the stack (created, not run): what a deploy would add, modify and remove."""
        return self.ctx.stacks.plan(short, params, on_event=on_event)

    def execute_stack(self, plan: Plan, on_event: Callable[[StackEvent], None] | None = None) -> StackInfo:
        return self.ctx.stacks.execute(plan, on_event=on_event)

    def deploy_stack(self, short: str, on_event: Callable[[StackEvent], None]) -> StackInfo:
        return self.ctx.stacks.deploy(short, on_event=on_event)

    def delete_stack(self, short: str, on_event: Callable[[StackEvent], None] | None = None) -> StackInfo:
        return self.ctx.stacks.delete(short, on_event=on_event)

    # -- SDS-Inf -------------------------------------------------------------------------------------
    def plan_run(self, preset: str, **choices: Any) -> RunPlan:
        from backend.sdsinf.runs import plan_from_preset

        return plan_from_preset(self.ctx.home, preset, **choices)

    def plan_payload(
        self, path: Path, data: str | None = None, variant: str | None = None, wire: str | None = None
    ) -> RunPlan:
        """One of the original's payload files as a run (read as a deployed coordinator reads it:
        lambda_src/sdsinf/payload.py)."""
        from backend.sdsinf.runs import plan_from_payload

        return plan_from_payload(path, data=data, variant=variant, wire=wire)

    def start_run(self, plan: RunPlan) -> RunLaunch:
        return self._runs().start(plan)

    def follow_run(self, run_id: str, on_metric: Callable[[LiveMetric], None]) -> RunSummary:
        """Stream the run's per-layer metrics to its end; then its transient files (live metrics, Object
        partials) are removed, ended well or not: they have been read, and left they slow every listing
        and the local cloud's start."""
        runs = self._runs()
        try:
            return runs.follow(run_id, on_metric)
        finally:
            if runs.ended(run_id):
                runs.cleanup_transients(run_id)

    def runs(self) -> list[RunSummary]:
        return self._runs().runs()

    def compare_run(self, run_id: str, published: Path) -> tuple[str, list[ColumnComparison]]:
        """A run's metrics beside a published metrics file (the original's master_metrics_*.csv):
        (the run's id, its columns with ours, theirs and the ratio)."""
        from backend.sdsinf.results import compare_run

        return compare_run(self._runs(), run_id, published)

    def _runs(self) -> SdsinfRuns:
        from backend.sdsinf.runs import SdsinfRuns

        return SdsinfRuns(self.ctx)

    def resolve_run(self, run_id: str) -> str:
        """A run id from any unique prefix of one."""
        return self._runs().resolve(run_id)

    def run_details(self, run_id: str) -> dict[str, Any]:
        """One run's summary, metrics and files, as `sdsinf show --json` prints them."""
        return self._runs().show(run_id)

    def fetch_run(
        self, run_id: str, directory: Path, repeat: int = 1, overwrite: bool = True
    ) -> tuple[list[str], list[Path]]:
        """A run's files (with the original's master files) in `directory`; with `repeat` K, also the
        K-1 finished runs of the same shape before it, the master files then holding the medians.
        Answers (the runs fetched, the files written)."""
        from backend.sdsinf.results import fetch, fetch_repeats, repeats_of

        runs = self._runs()
        run_id = runs.resolve(run_id)
        bucket = runs.out["MetricsBucket"]
        if repeat > 1:
            run_ids = repeats_of(runs.runs(), run_id, repeat)
            return run_ids, fetch_repeats(runs.s3, bucket, run_ids, directory, overwrite)
        return [run_id], fetch(runs.s3, bucket, run_id, directory, overwrite)

    def upload_sdsinf(self, directory: Path, neurons: int, layers: int | None, name: str) -> dict[str, Any]:
        """A Graph Challenge directory converted and uploaded to the sdsinf stack's buckets as `name`."""
        return self._runs().upload(directory, neurons, layers, name)

    def sdsinf_server(self, action: str) -> dict[str, Any]:
        """The always-on Server baseline: `up`, `down` or `status`; answers {running, where, ...}."""
        if action not in ("up", "down", "status"):
            raise ConfigError(f"server action {action!r}: use up, down or status")
        server = self._runs().server
        return dict(getattr(server, action)())

    # -- the console's own settings ----------------------------------------------------------------
    def keymap(self) -> dict[str, str]:
        """Key remappings from $SKYDECK_HOME/keymap.yaml: binding id -> keys (e.g. `jobs.refresh: ctrl+r`)."""
        import yaml

        path = self.ctx.home.root / "keymap.yaml"
        if not path.exists():
            return {}
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
            raise ConfigError(f"{path}: expected binding ids mapped to keys, e.g. 'jobs.refresh: ctrl+r'")
        return dict(doc)

    # -- logs ----------------------------------------------------------------------------------------
    def log_sources(self) -> list[LogSource]:
        from backend.core.logs import sources

        return sources(self.ctx.home)

    def follow_log(self, source: LogSource) -> Follower:
        return Follower(source.path)
