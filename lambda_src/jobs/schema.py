"""The Plenoxels job document: one validated shape for the API, the executor, the CLI and the console.

A job is `{name, scene, engine, config, resources}`, plus `checkpoint` for a validation-only job
(evaluate a trained checkpoint on the scene's test views: PSNR, SSIM, LPIPS; no training). The
original's two POST bodies are accepted too and mapped onto the same document:

    {"command": [".../launch_auto.sh", EXPERIMENT, GPU, DATA_DIR, "-c"], "config": {...}}   training
    {"command": ["python", ".../render_imgs.py", CKPT, DATA_DIR], "config": {...}}          validation

Nothing else on a command line is ever run.
Every refusal is a `JobValidationError` naming the field and what to do about it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lambda_src.jobs.svox2_options import OPTIONS
from lambda_src.keys import NAME_RULE

ENGINES = ("auto", "torch", "svox2")
STATES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
LAUNCH_SCRIPT = "launch_auto.sh"
LAUNCH_COMMAND = f"/data/svox2/opt/{LAUNCH_SCRIPT}"  # where the original's hosts keep it
EVAL_SCRIPT = "render_imgs.py"
EVAL_COMMAND = f"/data/svox2/opt/{EVAL_SCRIPT}"
ORIGINAL_CKPT_ROOT = "/data/svox2/opt/ckpt/"  # launch_auto.sh trains into ckpt/EXPERIMENT/ckpt.npz
PYTHONS = re.compile(r"^(/[\w./-]*/)?python(3(\.\d+)?)?\Z")
JOB_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MAX_BODY_BYTES = 64 * 1024
MAX_RESO = 2048
MAX_ITERS = 10_000_000
# svox2's utils.MAX_SH_BASIS: its SparseGrid asserts 1 <= basis_dim <= this, and a square number for SH.
SVOX2_MAX_BASIS = 10
# The numbers a job's record can hold (DynamoDB's: 38 significant digits, 1e-130 to 1e126).
MIN_NUMBER, MAX_NUMBER = 1e-130, 1e126
NAME_RE = NAME_RULE  # the one rule for every name that becomes part of a key (lambda_src/keys.py)
SCENE_RE = re.compile(r"^(s3://[a-z0-9.-]{3,63}/[^\s\x00-\x1f\x7f]*|/[^\s\x00-\x1f\x7f]{0,1023}|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})\Z")
GPU_RE = re.compile(r"^[0-9A-Fa-f:.,]{1,32}\Z")

# Options whose value must not be negative (rates, weights, counts, resolutions).
_NON_NEGATIVE_PREFIXES = ("lr_", "lambda_", "n_", "tv_", "weight_", "density_", "background_", "rms_")
_POSITIVE = {
    "upsamp_every", "n_iters", "batch_size", "epoch_size", "step_size", "sh_dim", "basis_reso", "print_every",
    "save_every", "eval_every", "n_eval",
}  # fmt: skip

_INT_CEILINGS = {
    "batch_size": 1 << 20, "basis_reso": MAX_RESO, "background_reso": MAX_RESO,
    "max_grid_elements": MAX_RESO**3,
}  # fmt: skip


class JobValidationError(ValueError):
    """A job document was refused. `field` is the dotted path of the offending value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": "invalid job", "field": self.field, "message": self.message}


@dataclass(frozen=True)
class Resources:
    gpus: int = 1
    max_runtime_s: int = 24 * 3600

    @classmethod
    def parse(cls, raw: Any) -> Resources:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise JobValidationError("resources", 'must be an object like {"gpus": 1}')
        unknown = set(raw) - {"gpus", "max_runtime_s"}
        if unknown:
            raise JobValidationError(f"resources.{sorted(unknown)[0]}", "unknown key; allowed: gpus, max_runtime_s")
        gpus = _int(raw.get("gpus", 1), "resources.gpus", lo=0, hi=8)
        runtime = _int(raw.get("max_runtime_s", 24 * 3600), "resources.max_runtime_s", lo=60, hi=7 * 24 * 3600)
        return cls(gpus=gpus, max_runtime_s=runtime)


@dataclass(frozen=True)
class JobSpec:
    """A validated job. `config` holds only the svox2 options set explicitly (defaults are svox2's)."""

    name: str
    scene: str
    engine: str = "auto"
    config: dict[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    gpu: str | None = None
    preset: str | None = None
    checkpoint: str | None = None  # set: a validation-only job of this checkpoint (see checkpoint_ref)

    @property
    def validation_only(self) -> bool:
        return self.checkpoint is not None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        if doc["checkpoint"] is None:
            del doc["checkpoint"]  # a training job's document reads as it always has
        return doc

    def full_config(self) -> dict[str, Any]:
        """svox2's defaults overlaid with this job's options."""
        merged = {name: opt.default for name, opt in OPTIONS.items()}
        merged.update(self.config)
        return merged


MAX_DEPTH = 16  # a job is options, a list of grids at most: deeper nesting is never a job


def loads_bounded(raw: bytes | str, where: str) -> Any:
    """JSON text read only after its nesting is checked: a body nested thousands deep would exhaust the
    parser's recursion (and a RecursionError leaked as a 502). JobValidationError names `where`."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JobValidationError(where, f"nests deeper than {MAX_DEPTH} levels: a job is an object of options")
        elif char in "]}":
            depth -= 1
    return json.loads(text)


def parse_body(raw: bytes | str) -> JobSpec:
    """Parse and validate an HTTP body (JSON) into a job."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_BODY_BYTES:
        raise JobValidationError("body", f"is {size} bytes; the limit is {MAX_BODY_BYTES} bytes")
    if not size:
        raise JobValidationError("body", "is empty; send a job as JSON")
    try:
        doc = loads_bounded(raw, "body")
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, JobValidationError):
            raise
        raise JobValidationError("body", f"is not valid JSON ({exc})") from None
    return parse_job(doc)


def parse_job(doc: Any) -> JobSpec:
    """Validate a job document, in either skydeck's form or the seed's `command` + `config` form."""
    if not isinstance(doc, dict):
        raise JobValidationError("body", "must be a JSON object")
    spec = _from_seed(doc) if "command" in doc else _from_document(doc)
    data_dir = spec.config.get("data_dir")
    if data_dir is not None and data_dir.rstrip("/") != spec.scene.rstrip("/"):
        raise JobValidationError(
            "config.data_dir",
            f"must name the job's own scene ({spec.scene!r}), not {data_dir!r}; set the scene instead",
        )
    return spec


def _from_document(doc: dict[str, Any]) -> JobSpec:
    allowed = {"name", "scene", "engine", "config", "resources", "gpu", "preset", "checkpoint"}
    unknown = set(doc) - allowed
    if unknown:
        key = sorted(unknown)[0]
        raise JobValidationError(key or "body", f"unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")
    if "scene" not in doc:
        raise JobValidationError("scene", "is required: a scene name, an s3:// URI or an absolute path")
    scene = _scene(doc["scene"], "scene")
    name = doc.get("name") or _default_name(scene)
    engine = doc.get("engine", "auto")
    if engine not in ENGINES:
        raise JobValidationError("engine", f"must be one of {', '.join(ENGINES)}, not {engine!r}")
    preset = doc.get("preset")
    if preset is not None and (not isinstance(preset, str) or not NAME_RE.match(preset)):
        raise JobValidationError("preset", "must be a preset name (letters, digits, _ . -)")
    gpu = doc.get("gpu")
    if gpu is not None and (not isinstance(gpu, str) or not GPU_RE.match(gpu)):
        raise JobValidationError("gpu", "must be a GPU id such as '0' or '00:1e.0'")
    return JobSpec(
        name=_name(name, "name"),
        scene=scene,
        engine=engine,
        config=validate_config(doc.get("config", {})),
        resources=Resources.parse(doc.get("resources")),
        gpu=gpu,
        preset=preset,
        checkpoint=None if doc.get("checkpoint") is None else checkpoint_ref(doc["checkpoint"], "checkpoint"),
    )


def checkpoint_ref(value: Any, where: str) -> str:
    """A trained checkpoint to validate: a job id (its results/JOB_ID/ckpt.npz), an s3:// URI in the data
    bucket, or a host path under the data roots; the original's /data/svox2/opt/ckpt/EXPERIMENT/ckpt.npz
    is a host path that, where it does not exist, names the newest succeeded job called EXPERIMENT."""
    if isinstance(value, str) and JOB_ID_RE.match(value):
        return value
    if not isinstance(value, str) or not (value.startswith(("s3://", "/"))) or not SCENE_RE.match(value):
        raise JobValidationError(
            where, "must be a job id, an s3:// URI of a ckpt.npz in the data bucket, or a host path under a data root"
        )
    if ".." in value.split("/"):
        raise JobValidationError(where, "must not contain '..'")
    if value.startswith("/") and not (value.rstrip("/") + "/").startswith(data_roots()):
        raise JobValidationError(where, f"a host path must be under {', '.join(data_roots())}")
    return value


def original_experiment(checkpoint: str) -> str | None:
    """EXPERIMENT in the original's /data/svox2/opt/ckpt/EXPERIMENT[/ckpt.npz] (its executor wrote the
    path as ckpt/$EXPERIMENT, so a leading '$' is read through)."""
    if not checkpoint.startswith(ORIGINAL_CKPT_ROOT):
        return None
    rest = checkpoint[len(ORIGINAL_CKPT_ROOT) :].strip("/").split("/")
    name = rest[0].lstrip("$") if rest and rest[0] else ""
    return name if NAME_RE.match(name) else None


def _from_seed(doc: dict[str, Any]) -> JobSpec:
    unknown = set(doc) - {"command", "config"}
    if unknown:
        key = sorted(unknown)[0]
        raise JobValidationError(key or "body", f"unknown key {key!r}; the launch form takes only command and config")
    cmd = doc["command"]
    usage = f'must be [".../{LAUNCH_SCRIPT}", EXPERIMENT, GPU_ID, DATA_DIR, "-c"]'
    if not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
        raise JobValidationError("command", f"{usage}, a list of strings")
    if len(cmd) >= 2 and cmd[1].rsplit("/", 1)[-1] == EVAL_SCRIPT:
        return _from_original_validation(cmd, doc.get("config", {}))
    if not cmd or cmd[0].rsplit("/", 1)[-1] != LAUNCH_SCRIPT:
        first = cmd[0] if cmd else ""
        raise JobValidationError("command[0]", f"unknown command {first!r}; only {LAUNCH_SCRIPT} is run ({usage})")
    if len(cmd) != 5 or cmd[4] != "-c":
        raise JobValidationError("command", f"{usage}; got {len(cmd)} items")
    if not GPU_RE.match(cmd[2]):
        raise JobValidationError("command[2]", "must be a GPU id such as '0' or '00:1e.0'")
    return JobSpec(
        name=_name(cmd[1], "command[1]"),
        scene=_scene(cmd[3], "command[3]"),
        engine="auto",
        config=validate_config(doc.get("config", {})),
        gpu=cmd[2],
    )


def _from_original_validation(cmd: list[str], config: Any) -> JobSpec:
    usage = f'must be ["python", ".../{EVAL_SCRIPT}", CHECKPOINT, DATA_DIR]'
    if not PYTHONS.match(cmd[0]):
        raise JobValidationError("command[0]", f"must be a python interpreter, not {cmd[0]!r} ({usage})")
    if len(cmd) != 4:
        raise JobValidationError("command", f"{usage}; got {len(cmd)} items")
    checkpoint = checkpoint_ref(cmd[2], "command[2]")
    experiment = original_experiment(checkpoint)
    return JobSpec(
        name=_name(f"validate-{experiment}"[:64] if experiment else "validate", "command[2]"),
        scene=_scene(cmd[3], "command[3]"),
        engine="auto",
        config=validate_config(config),
        checkpoint=checkpoint,
    )


def validate_config(raw: Any, prefix: str = "config") -> dict[str, Any]:
    """Check each option against svox2's table: known name, right type, sane range."""
    if not isinstance(raw, dict):
        raise JobValidationError(prefix, "must be an object of svox2 options")
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        clean[key] = validate_option(key, value, prefix)
    _check_basis(clean, prefix)
    return clean


def _check_basis(config: dict[str, Any], prefix: str) -> None:
    """Refuse a basis svox2's SparseGrid would refuse: it could neither train it nor load its checkpoint."""
    dim = config.get("sh_dim")
    if dim is None:
        return
    if dim > SVOX2_MAX_BASIS:
        raise JobValidationError(
            f"{prefix}.sh_dim",
            f"svox2 supports basis_dim 1-{SVOX2_MAX_BASIS} (its SparseGrid asserts it), got {dim}; use 1, 4 or 9",
        )
    if config.get("basis_type", OPTIONS["basis_type"].default) == "sh" and math.isqrt(dim) ** 2 != dim:
        raise JobValidationError(
            f"{prefix}.sh_dim", f"basis_dim (SH) must be a square number, as svox2 asserts: 1, 4 or 9, not {dim}"
        )


def validate_option(key: str, value: Any, prefix: str = "config") -> Any:
    where = f"{prefix}.{key}"
    opt = OPTIONS.get(key)
    if opt is None:
        close = [n for n in OPTIONS if n.startswith(key[:4])][:3]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise JobValidationError(where, f"unknown svox2 option{hint}")
    if key == "reso":
        return _reso(value, where)
    if opt.type is bool:
        if not isinstance(value, bool):
            raise JobValidationError(where, f"must be true or false, not {value!r}")
        return value
    if opt.type is int:
        lo = 1 if key in _POSITIVE else (0 if key.startswith(_NON_NEGATIVE_PREFIXES) else None)
        # every count has a ceiling svox2 would still run with: rays a step, SH bases, grid sides, steps
        hi = _INT_CEILINGS.get(key, MAX_ITERS)
        return _int(value, where, lo=lo, hi=hi)
    if opt.type is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise JobValidationError(where, f"must be a number, not {value!r}")
        if not math.isfinite(value):
            raise JobValidationError(where, "must be a finite number")
        if value != 0 and not MIN_NUMBER <= abs(value) < MAX_NUMBER:
            raise JobValidationError(where, f"must be 0 or between 1e-130 and 1e126 in size, got {value!r}")
        if key.startswith(_NON_NEGATIVE_PREFIXES) and value < 0:
            raise JobValidationError(where, f"must be >= 0, got {value}")
        if key in _POSITIVE and value <= 0:
            raise JobValidationError(where, f"must be > 0, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise JobValidationError(where, f"must be a string, not {value!r}")
    if opt.choices and value not in opt.choices:
        raise JobValidationError(where, f"must be one of {', '.join(opt.choices)}, not {value!r}")
    return value


def parse_reso(value: Any) -> list[list[int]]:
    """svox2 takes `reso` as a string holding a list of grids, each [x, y, z] or N (a cube)."""
    return [[g, g, g] if isinstance(g, int) else g for g in json.loads(_reso(value, "config.reso"))]


def _reso(value: Any, where: str) -> str:
    grids = value
    if isinstance(value, str):
        try:
            grids = loads_bounded(value, where)
        except JobValidationError:
            raise
        except ValueError:
            raise JobValidationError(where, 'must be a list of [x, y, z] grids, e.g. "[[256, 256, 256]]"') from None
    if not isinstance(grids, list) or not grids:
        raise JobValidationError(where, "must be a non-empty list of [x, y, z] grids")
    for i, grid in enumerate(grids):
        cube = isinstance(grid, int) and not isinstance(grid, bool)  # svox2 takes N for [N, N, N]
        sizes = [grid] * 3 if cube else grid
        ok = isinstance(sizes, list) and len(sizes) == 3
        ok = ok and all(isinstance(n, int) and not isinstance(n, bool) for n in sizes)
        if not ok:
            raise JobValidationError(f"{where}[{i}]", f"must be N or three integers [x, y, z], got {grid!r}")
        if not all(1 <= n <= MAX_RESO for n in sizes):
            raise JobValidationError(f"{where}[{i}]", f"each size must be between 1 and {MAX_RESO}, got {grid}")
    return json.dumps(grids)


def _int(value: Any, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobValidationError(where, f"must be an integer, not {value!r}")
    if abs(value) >= 10**38:
        raise JobValidationError(where, f"is too large ({len(str(abs(value)))} digits; at most 38)")
    if lo is not None and value < lo:
        raise JobValidationError(where, f"must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise JobValidationError(where, f"must be <= {hi}, got {value}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise JobValidationError(
            where, "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return value


def data_roots() -> tuple[str, ...]:
    """Where a job may name a host path: under these directories only ($SKYDECK_DATA_ROOT, colon
    separated; default /data, where the original's hosts and the fleet keep datasets)."""
    raw = os.environ.get("SKYDECK_DATA_ROOT", "/data")
    return tuple(r.rstrip("/") + "/" for r in raw.split(":") if r.startswith("/"))


def _scene(value: Any, where: str) -> str:
    if not isinstance(value, str) or not SCENE_RE.match(value) or ".." in value.split("/"):
        raise JobValidationError(where, "must be a scene name, an s3://bucket/key URI or an absolute path")
    if value.startswith("/") and not (value.rstrip("/") + "/").startswith(data_roots()):
        roots = ", ".join(data_roots())
        raise JobValidationError(
            where,
            f"a host path must be under {roots} (where hosts keep datasets); push other scenes with "
            "skydeck data push and name them instead",
        )
    return value


def _default_name(scene: str) -> str:
    base = scene.rstrip("/").rsplit("/", 1)[-1] or "job"
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)[:56]
    return base if base and base[0].isalnum() else f"job_{base}"[:64]
