"""The backend as both front ends see it: typed methods, dataclass results, and the errors they raise.

One door: the console and the CLI import this package and nothing else of the backend (import-linter
contracts say so), so each decision - how a preset becomes a job or a run, which states a job can be
in, what a short id means - is made once, here or below, and both front ends get the same answer.

- `Backend` (backend.py): what is done with one profile's cloud - jobs, scenes, stacks, the fleet,
  SDS-Inf runs.
- home.py: what is done on this machine alone - presets, profiles, the local cloud, scenes and
  SDS-Inf data made or checked here.
- records.py: a jobs-table record as the front ends read it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what each name is, for readers, type checkers and import-linter alike
    from backend import __version__
    from backend.core.disk import full_disk, is_full
    from backend.core.errors import ConfigError, NotFoundError, SkydeckError, Unreachable
    from backend.core.humanize import age, duration, phases, size
    from backend.core.logs import Follower, LogSource
    from backend.core.presets import KINDS as PRESET_KINDS
    from backend.core.presets import Preset
    from backend.core.profiles import LOCAL, Profile
    from backend.core.text import markup_safe, shown
    from backend.fleet.hosts import Fleet, Host
    from backend.interface.backend import Backend
    from backend.interface.home import (
        LocalCloud,
        generate_sdsinf,
        get_preset,
        import_profile,
        import_sdsinf,
        infer_sdsinf,
        list_presets,
        list_profiles,
        make_scene,
        median_of,
        partition_report,
        read_job_file,
        stack_shorts,
    )
    from backend.interface.records import Job, JobPage, MonitorSnapshot
    from backend.jobs.batch import BatchPlan
    from backend.sdsinf.plans import RunLaunch, RunPlan
    from backend.sdsinf.results import ColumnComparison
    from backend.stacks.service import ORDER, STACKS, StackEvent, StackInfo
    from lambda_src.jobs.schema import ENGINES, STATES, TERMINAL_STATES, JobSpec
    from lambda_src.sdsinf.contracts import LiveMetric, RunSummary
    from lambda_src.sdsinf.names import PARTITIONS, VARIANTS, WIRES

# Each name is loaded from its home on first use (PEP 562), so that `skydeck --version` reads the
# version alone and `--help` loads the lists of choices without the backend's clients or services.
_WHERE: dict[str, tuple[str, str]] = {
    "Backend": ("backend.interface.backend", "Backend"),
    "BatchPlan": ("backend.jobs.batch", "BatchPlan"),
    "ColumnComparison": ("backend.sdsinf.results", "ColumnComparison"),
    "ConfigError": ("backend.core.errors", "ConfigError"),
    "markup_safe": ("backend.core.text", "markup_safe"),
    "full_disk": ("backend.core.disk", "full_disk"),
    "is_full": ("backend.core.disk", "is_full"),
    "shown": ("backend.core.text", "shown"),
    "ENGINES": ("lambda_src.jobs.schema", "ENGINES"),
    "Fleet": ("backend.fleet.hosts", "Fleet"),
    "Follower": ("backend.core.logs", "Follower"),
    "Host": ("backend.fleet.hosts", "Host"),
    "Job": ("backend.interface.records", "Job"),
    "JobPage": ("backend.interface.records", "JobPage"),
    "JobSpec": ("lambda_src.jobs.schema", "JobSpec"),
    "LOCAL": ("backend.core.profiles", "LOCAL"),
    "LiveMetric": ("lambda_src.sdsinf.contracts", "LiveMetric"),
    "LocalCloud": ("backend.interface.home", "LocalCloud"),
    "LogSource": ("backend.core.logs", "LogSource"),
    "MonitorSnapshot": ("backend.interface.records", "MonitorSnapshot"),
    "NotFoundError": ("backend.core.errors", "NotFoundError"),
    "ORDER": ("backend.stacks.service", "ORDER"),
    "PARTITIONS": ("lambda_src.sdsinf.names", "PARTITIONS"),
    "PRESET_KINDS": ("backend.core.presets", "KINDS"),
    "Preset": ("backend.core.presets", "Preset"),
    "Profile": ("backend.core.profiles", "Profile"),
    "RunLaunch": ("backend.sdsinf.plans", "RunLaunch"),
    "RunPlan": ("backend.sdsinf.plans", "RunPlan"),
    "RunSummary": ("lambda_src.sdsinf.contracts", "RunSummary"),
    "STACKS": ("backend.stacks.service", "STACKS"),
    "STATES": ("lambda_src.jobs.schema", "STATES"),
    "SkydeckError": ("backend.core.errors", "SkydeckError"),
    "StackEvent": ("backend.stacks.service", "StackEvent"),
    "StackInfo": ("backend.stacks.service", "StackInfo"),
    "TERMINAL_STATES": ("lambda_src.jobs.schema", "TERMINAL_STATES"),
    "Unreachable": ("backend.core.errors", "Unreachable"),
    "VARIANTS": ("lambda_src.sdsinf.names", "VARIANTS"),
    "WIRES": ("lambda_src.sdsinf.names", "WIRES"),
    "__version__": ("backend", "__version__"),
    "age": ("backend.core.humanize", "age"),
    "duration": ("backend.core.humanize", "duration"),
    "generate_sdsinf": ("backend.interface.home", "generate_sdsinf"),
    "get_preset": ("backend.interface.home", "get_preset"),
    "import_profile": ("backend.interface.home", "import_profile"),
    "import_sdsinf": ("backend.interface.home", "import_sdsinf"),
    "infer_sdsinf": ("backend.interface.home", "infer_sdsinf"),
    "list_presets": ("backend.interface.home", "list_presets"),
    "list_profiles": ("backend.interface.home", "list_profiles"),
    "make_scene": ("backend.interface.home", "make_scene"),
    "median_of": ("backend.interface.home", "median_of"),
    "partition_report": ("backend.interface.home", "partition_report"),
    "phases": ("backend.core.humanize", "phases"),
    "read_job_file": ("backend.interface.home", "read_job_file"),
    "size": ("backend.core.humanize", "size"),
    "stack_shorts": ("backend.interface.home", "stack_shorts"),
}

__all__ = [
    "ENGINES", "LOCAL", "ORDER", "PARTITIONS", "PRESET_KINDS", "STACKS", "STATES", "TERMINAL_STATES", "VARIANTS",
    "WIRES", "Backend", "BatchPlan", "ColumnComparison", "ConfigError", "Follower", "Fleet", "Host", "Job",
    "JobPage", "JobSpec", "LiveMetric", "LocalCloud", "LogSource", "MonitorSnapshot", "NotFoundError", "Preset",
    "Profile", "RunLaunch", "RunPlan", "RunSummary", "SkydeckError", "StackEvent", "StackInfo", "Unreachable",
    "__version__", "age", "duration", "generate_sdsinf", "get_preset", "import_profile", "import_sdsinf",
    "infer_sdsinf", "list_presets", "list_profiles", "make_scene", "median_of", "partition_report", "phases",
    "full_disk", "is_full", "markup_safe", "read_job_file", "shown", "size", "stack_shorts",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'backend.interface' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # the next use is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
