"""The backend as the console (and the CLI) sees it: typed methods, dataclass results.

One door: the console imports this module and nothing else of the backend (an import-linter
contract says so), so each decision - how a preset becomes a job or a run, which states a job can be
in, what a short id means - is made once, here or below, and both front ends get the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.context import Context
from backend.core.errors import ConfigError, NotFoundError, SkydeckError
from backend.core.humanize import age, duration, size
from backend.core.logs import Follower, LogSource
from backend.core.presets import Preset
from backend.core.profiles import Profile
from backend.fleet.hosts import Fleet, Host
from backend.jobs.batch import BatchPlan
from backend.sdsinf.plans import RunLaunch, RunPlan
from backend.stacks.service import ORDER, STACKS, StackEvent, StackInfo
from lambda_src.jobs.schema import STATES, TERMINAL_STATES, JobSpec
from lambda_src.sdsinf.contracts import LiveMetric, RunSummary
from lambda_src.sdsinf.names import VARIANTS

__all__ = [
    "ORDER", "STACKS", "STATES", "TERMINAL_STATES", "VARIANTS", "Backend", "BatchPlan", "ConfigError", "Follower",
    "Fleet", "Host", "Job", "JobPage", "JobSpec", "LiveMetric", "LogSource", "NotFoundError", "Preset", "Profile",
    "RunLaunch", "RunPlan", "RunSummary", "SkydeckError", "MonitorSnapshot", "StackEvent", "StackInfo", "age",
    "duration", "size",
]  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One training job as the jobs table holds it."""

    job_id: str
    state: str
    name: str = ""
    scene: str = ""
    engine: str = ""
    preset: str | None = None
    worker: str | None = None
    attempts: int = 0
    error: str | None = None
    note: str | None = None
    created_at: float | None = None
    cancel_requested: bool = False
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        created = record.get("created_at")
        return cls(
            job_id=record["job_id"],
            state=record.get("state", "?"),
            name=record.get("name") or "",
            scene=record.get("scene") or "",
            engine=record.get("engine") or "",
            preset=record.get("preset"),
            worker=record.get("worker"),
            attempts=int(record.get("attempts") or 0),
            error=record.get("error"),
            note=record.get("note"),
            created_at=float(created) if created is not None else None,
            cancel_requested=bool(record.get("cancel_requested")),
            # a job that ended is past every stage: its last one ("writing results") is history
            progress={
                k: v
                for k, v in (record.get("progress") or {}).items()
                if not (k == "stage" and record.get("state") in TERMINAL_STATES)
            },
            result=dict(record.get("result") or {}),
            config=dict(record.get("config") or {}),
            resources=dict(record.get("resources") or {}),
        )

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def psnr(self) -> float | None:
        value = self.result.get("psnr", self.progress.get("psnr"))
        return float(value) if isinstance(value, int | float) else None

    @property
    def iteration(self) -> int | None:
        value = self.progress.get("iteration")
        return int(value) if isinstance(value, int | float) else None

    @property
    def phases(self) -> dict[str, float]:
        """Seconds per phase (queued, load, train, evaluate, render, upload) of a job that ended."""
        value = self.result.get("phases_s")
        return {k: float(v) for k, v in value.items() if isinstance(v, int | float)} if isinstance(value, dict) else {}

    @property
    def notes(self) -> list[str]:
        return [str(n) for n in self.result.get("notes", [])]


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    next_token: str | None = None


@dataclass(frozen=True)
class MonitorSnapshot:
    """The jobs queue's depth, jobs per state and the newest jobs, at one moment."""

    at: float
    queue_visible: int
    queue_in_flight: int
    dead_letter: int
    per_state: dict[str, int]
    recent: list[Job]


class Backend:
    """Everything the console does, for one profile."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @classmethod
    def open(cls, profile: str | None = None, home: Path | None = None) -> Backend:
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
        return Backend(Context.create(name, self.ctx.home))

    def account_id(self) -> str | None:
        """The AWS account behind the profile; None on the local cloud."""
        if self.ctx.profile.is_local:
            return None
        return str(self.ctx.clients.client("sts").get_caller_identity()["Account"])

    def ensure_local_cloud(self) -> None:
        if self.ctx.profile.is_local:
            from backend.localcloud import control

            control.up(self.ctx.home)

    # -- fleet hosts ---------------------------------------------------------------------------------
    def _fleet(self):  # noqa: ANN202
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
    def jobs(self, state: str | None = None, limit: int = 50) -> JobPage:
        page = self.ctx.jobs.list(state=state, limit=limit)
        return JobPage([Job.from_record(r) for r in page["items"]], page.get("next_token"))

    def job(self, job_id: str) -> Job:
        return Job.from_record(self.ctx.jobs.get(job_id))

    def cancel_job(self, job_id: str) -> Job:
        return Job.from_record(self.ctx.jobs.cancel(job_id))

    def compose_job(self, preset: Preset | None, scene: str | None, overrides: list[str]) -> JobSpec:
        """A job from a preset and `key=value` overrides on top of its values, as `skydeck jobs submit
        --preset` makes it (backend.core.presets.job_from_preset) - raises ConfigError."""
        from backend.core.presets import compose_job, job_from_preset

        if preset is None:
            return compose_job({}, scene=scene, overrides=overrides)
        return job_from_preset(preset, scene=scene, overrides=overrides)

    def submit_job(self, spec: JobSpec, check_scene: bool = True, force: bool = False) -> Job:
        """Queue a job; a pushed scene that is not in the data bucket is refused first (NotFoundError), and
        on the local cloud one estimated to train for hours on its CPU (ConfigError) unless `force`."""
        if check_scene:
            self.ctx.scenes.check_exists(spec.scene)
        return Job.from_record(self.ctx.jobs.submit(spec, laptop_guard=not force))

    def job_log(self, job_id: str, tail_bytes: int | None = None) -> str | None:
        """The job's own log, or None while there is none; with `tail_bytes`, its last whole lines
        within that many bytes."""
        try:
            raw = self.ctx.scenes.read_result(job_id, "job.log", tail=tail_bytes)
            if tail_bytes and len(raw) >= tail_bytes:
                raw = raw.split(b"\n", 1)[-1]  # the first line was cut by the range
            return raw.decode(errors="replace")
        except (NotFoundError, SkydeckError):
            return None
        except Exception:  # noqa: BLE001 - a missing object reads as "no log yet"
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

    def fetch_results(self, job_id: str, directory: Path) -> list[Path]:
        return self.ctx.scenes.fetch(job_id, directory)

    def generate_and_upload_sdsinf(
        self, name: str, directory: Path, neurons: int = 1024, layers: int = 120, inputs: int = 1000
    ) -> str:
        """A Graph Challenge-style network and inputs written to `directory`, uploaded as `name`."""
        from backend.sdsinf.data import generate
        from backend.sdsinf.runs import SdsinfRuns

        made = generate(directory, neurons, layers, inputs, 0)
        info = SdsinfRuns(self.ctx).upload(directory, neurons, layers, name)
        shape = f"{neurons} neurons x {layers} layers"
        return f"data {name}: {shape}, {info['inputs']} inputs, {made['categories']} categories"

    def load_batch(self, path: Path) -> BatchPlan:
        from backend.jobs.batch import load_plan

        return load_plan(path, self.ctx)

    def run_batch(self, plan: BatchPlan, dry_run: bool = False) -> list[dict[str, Any]]:
        from backend.jobs.batch import run

        return run(self.ctx, plan, dry_run=dry_run)

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

    # -- stacks --------------------------------------------------------------------------------------
    def stacks(self) -> list[StackInfo]:
        return self.ctx.stacks.list()

    def deploy_stack(self, short: str, on_event: Callable[[StackEvent], None]) -> StackInfo:
        return self.ctx.stacks.deploy(short, on_event=on_event)

    def delete_stack(self, short: str, on_event: Callable[[StackEvent], None]) -> StackInfo:
        return self.ctx.stacks.delete(short, on_event=on_event)

    # -- SDS-Inf -------------------------------------------------------------------------------------
    def plan_run(self, preset: str, **choices: Any) -> RunPlan:
        from backend.sdsinf.runs import plan_from_preset

        return plan_from_preset(self.ctx.home, preset, **choices)

    def plan_payload(
        self, path: Path, data: str | None = None, variant: str | None = None, wire: str | None = None
    ) -> RunPlan:
        """One of the original's payload files as a run (see backend/sdsinf/payload.py)."""
        from backend.sdsinf.runs import plan_from_payload

        return plan_from_payload(path, data=data, variant=variant, wire=wire)

    def start_run(self, plan: RunPlan) -> RunLaunch:
        from backend.sdsinf.runs import SdsinfRuns

        return SdsinfRuns(self.ctx).start_plan(plan)

    def follow_run(self, run_id: str, on_metric: Callable[[LiveMetric], None]) -> RunSummary:
        from backend.sdsinf.runs import SdsinfRuns

        return SdsinfRuns(self.ctx).follow(run_id, on_metric)

    def runs(self) -> list[RunSummary]:
        from backend.sdsinf.runs import SdsinfRuns

        return SdsinfRuns(self.ctx).runs()

    def compare_run(self, run_id: str, published: Path) -> tuple[str, list[dict[str, Any]]]:
        """A run's metrics beside a published metrics file (the original's master_metrics_*.csv):
        (the run's id, [{column, ours, theirs, ratio}])."""
        from backend.sdsinf.results import compare_run
        from backend.sdsinf.runs import SdsinfRuns

        full_id, rows = compare_run(SdsinfRuns(self.ctx), run_id, published)
        return full_id, [r.to_dict() for r in rows]

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
