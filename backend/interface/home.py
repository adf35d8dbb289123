"""What the front ends do on this machine alone, before any profile's cloud is reached: presets,
profiles, the embedded local cloud, scenes and SDS-Inf data made or checked here.

Each function takes the skydeck home (default: $SKYDECK_HOME, else ~/.skydeck); the modules behind
them are imported when called, so that a CLI printing its --help loads none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.core.errors import ConfigError, SkydeckError

if TYPE_CHECKING:
    from backend.core.paths import Home
    from backend.core.presets import Preset
    from backend.core.profiles import Profile
    from backend.localcloud.control import Status
    from backend.localcloud.repair import RepairReport
    from backend.sdsinf.data import InferResult
    from gpu_executor.plenoxels.scene import SceneInfo
    from lambda_src.jobs.schema import JobSpec


def _home(home: Path | None) -> Home:
    from backend.core.paths import Home

    return Home(home) if home else Home.from_env()


# -- presets and profiles --------------------------------------------------------------------------
def list_presets(kind: str | None = None, home: Path | None = None) -> list[Preset]:
    """Built-in and user presets, a user's overriding a built-in of the same name."""
    from backend.core.presets import list_presets as listed

    return listed(_home(home), kind)


def get_preset(name: str, home: Path | None = None) -> Preset:
    from backend.core.presets import get_preset as got

    return got(_home(home), name)


def list_profiles(home: Path | None = None) -> list[Profile]:
    from backend.core.profiles import load_profiles

    return list(load_profiles(_home(home)).values())


def import_profile(
    environment_sh: Path, name: str, confirm_replace: Callable[[str], None], home: Path | None = None
) -> dict[str, Any]:
    """The original's environment.sh (read as data, never run) written to profiles.yaml as `name`;
    `confirm_replace` is asked before a profile of that name is replaced. Answers {profile, file,
    settings, ignored, placeholders}."""
    from backend.core.environment_import import profile_from_environment, read_environment
    from backend.core.profiles import save_profile

    imported = profile_from_environment(read_environment(environment_sh))
    path = save_profile(_home(home), name, imported.settings, confirm_replace)
    return {
        "profile": name,
        "file": str(path),
        "settings": imported.settings,
        "ignored": imported.ignored,
        "placeholders": imported.placeholders,
    }


# -- the local cloud -------------------------------------------------------------------------------
class LocalCloud:
    """The embedded local cloud of one home: started, stopped, inspected, its journal repaired."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = _home(home)

    @property
    def journal(self) -> Path:
        return self.home.local_journal

    def status(self) -> Status:
        from backend.localcloud import control

        return control.status(self.home)

    def up(self, on_wait: Callable[[], None] | None = None, workers: int | None = None) -> Status:
        """Start it (idempotent), `on_wait` called while it restores its state; answers its status. A start
        also upgrades what an earlier release left that this one would refuse: its `upgraded` says what."""
        from backend.localcloud import control

        was_running = control.status(self.home).running
        status = control.up(self.home, on_wait=on_wait, workers=workers)
        if not was_running:
            adopted = self._adopt_scenes()
            if adopted:
                status.state["upgraded"] = {"scenes": adopted}
        return status

    def _adopt_scenes(self) -> list[str]:
        """Scenes pushed before manifests were written are given one where their files are whole (so
        that jobs queued for them before an upgrade still run); `profile:scene` for each."""
        from botocore.exceptions import BotoCoreError, ClientError

        from backend.context import Context
        from backend.core.profiles import load_profiles

        adopted: list[str] = []
        for profile in load_profiles(self.home).values():
            if not profile.is_local:
                continue
            ctx = Context(home=self.home, profile=profile)
            try:
                if not ctx.stacks.describe("infra").deployed:
                    continue
                adopted += [
                    f"{profile.name}:{s['name']}"
                    for s in ctx.scenes.list()
                    if not s["complete"] and ctx.scenes.adopt(s["name"])
                ]
            except (SkydeckError, BotoCoreError, ClientError):
                continue  # the start stands; `data list` still says which scenes are incomplete
        return adopted

    def replay_progress(self) -> tuple[int, int] | None:
        """(recorded changes replayed, of how many) while a start restores the journal, else None."""
        import json

        try:
            doc = json.loads(self.home.local_replay_progress.read_text())
            return int(doc["replayed"]), int(doc["total"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def down(self) -> bool:
        from backend.localcloud import control

        return control.down(self.home)

    def repair(self) -> RepairReport:
        """Keep what a damaged journal still holds, set the file aside, start the journal afresh."""
        from backend.localcloud.repair import repair

        return repair(self.home)


# -- jobs written here -----------------------------------------------------------------------------
def read_job_file(path: Path) -> JobSpec:
    """A job JSON file (skydeck's form or the original's), checked; ConfigError names the field."""
    from lambda_src.jobs.schema import JobValidationError, parse_body

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_body(raw)
    except JobValidationError as exc:
        raise ConfigError(f"{path}: {exc.field}: {exc.message}") from None


def make_scene(name: str, directory: Path, size: int = 128, views: int = 100, test_views: int = 10) -> SceneInfo:
    """A small synthetic scene with exact held-out views, in the NeRF-synthetic layout."""
    from gpu_executor.plenoxels.scene import make_scene as made

    return made(name, directory, size=size, views=views, test_views=test_views)


def stack_shorts(name: str) -> list[str]:
    """The stacks a name means, in deployment order: `all` is every one; an unknown name is refused."""
    from backend.stacks.service import ORDER, stack_def

    if name == "all":
        return list(ORDER)
    stack_def(name)
    return [name]


# -- SDS-Inf data ----------------------------------------------------------------------------------
def generate_sdsinf(directory: Path, neurons: int, layers: int, inputs: int, seed: int) -> dict[str, Any]:
    """A RadiX-Net style network and inputs with their truth categories, in the Graph Challenge layout."""
    from backend.sdsinf.data import generate

    return generate(directory, neurons, layers, inputs, seed)


def import_sdsinf(download: Path, directory: Path, neurons: int) -> dict[str, Any]:
    """An official Graph Challenge download unpacked and checked into the Graph Challenge layout."""
    from backend.sdsinf.importer import import_download

    return dict(import_download(download, directory, neurons))


def infer_sdsinf(directory: Path, neurons: int, layers: int, home: Path | None = None) -> InferResult:
    """Inference on this machine, checked against the truth file when there is one; the parsed files
    are cached in the home under a digest of their contents."""
    from backend.sdsinf.data import infer_dir

    return infer_dir(directory, neurons, layers, cache=_home(home).cache_dir / "sdsinf")


def partition_report(directory: Path, neurons: int, layers: int, workers: int) -> dict[str, Any]:
    """Rows and bytes sent between workers per layer, under each partition."""
    from backend.sdsinf.data import partition_report as report

    return dict(report(directory, neurons, layers, workers))


def median_of(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run of repeated runs' summaries: runtime, compute, edges/s and cost."""
    from backend.sdsinf.costs import median_summary

    return median_summary(summaries)
