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

from backend import __version__
from backend.core.errors import ConfigError, NotFoundError, SkydeckError, Unreachable
from backend.core.humanize import age, duration, phases, size
from backend.core.logs import Follower, LogSource
from backend.core.presets import KINDS as PRESET_KINDS
from backend.core.presets import Preset
from backend.core.profiles import LOCAL, Profile
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

__all__ = [
    "ENGINES", "LOCAL", "ORDER", "PARTITIONS", "PRESET_KINDS", "STACKS", "STATES", "TERMINAL_STATES", "VARIANTS",
    "WIRES", "Backend", "BatchPlan", "ColumnComparison", "ConfigError", "Follower", "Fleet", "Host", "Job",
    "JobPage", "JobSpec", "LiveMetric", "LocalCloud", "LogSource", "MonitorSnapshot", "NotFoundError", "Preset",
    "Profile", "RunLaunch", "RunPlan", "RunSummary", "SkydeckError", "StackEvent", "StackInfo", "Unreachable",
    "__version__", "age", "duration", "generate_sdsinf", "get_preset", "import_profile", "import_sdsinf",
    "infer_sdsinf", "list_presets", "list_profiles", "make_scene", "median_of", "partition_report", "phases",
    "read_job_file", "size", "stack_shorts",
]  # fmt: skip
