"""Presets: plain YAML files (`kind`, `description`, `values`) that compose into jobs and runs.

Built-ins live in `presets/<kind>/NAME.yaml` (carried into the package when built); a user's own in
`$SKYDECK_HOME/presets/` (any depth) override built-ins of the same name.
A job is a preset plus overrides, validated once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.errors import ConfigError, NotFoundError
from backend.core.paths import Home, presets_dir
from lambda_src.jobs.schema import JobSpec, JobValidationError, parse_job

KINDS = ("plenoxels", "sdsinf", "batch")


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str
    description: str
    values: dict[str, Any]
    path: Path
    builtin: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "values": self.values,
            "path": str(self.path),
            "source": "built-in" if self.builtin else "user",
        }


def _load(path: Path, builtin: bool) -> Preset:
    import yaml  # here, not at the top: the CLI imports KINDS for its --help

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"preset {path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"preset {path}: expected a mapping with kind, description and values")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"preset {path}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    values = doc.get("values") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"preset {path}: values must be a mapping")
    return Preset(path.stem, kind, str(doc.get("description", "")), values, path, builtin)


def load_presets(home: Home) -> dict[str, Preset]:
    found: dict[str, Preset] = {}
    for root, builtin in ((presets_dir(), True), (home.presets_dir, False)):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.yaml")) + sorted(root.rglob("*.yml")):
            preset = _load(path, builtin)
            found[preset.name] = preset  # user presets come second and win
    return found


def list_presets(home: Home, kind: str | None = None) -> list[Preset]:
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return sorted((p for p in load_presets(home).values() if kind in (None, p.kind)), key=lambda p: (p.kind, p.name))


def get_preset(home: Home, name: str) -> Preset:
    presets = load_presets(home)
    if name not in presets:
        import difflib

        close = [n for n in presets if name.lower() in n.lower()]
        close += [n for n in difflib.get_close_matches(name, list(presets), n=3, cutoff=0.6) if n not in close]
        close = close[:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else " List them with: skydeck presets list"
        raise NotFoundError(f"no preset named {name!r}.{hint}")
    return presets[name]


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value`, the value read as JSON or YAML (so 1e-3, 42, true and [1, 2] mean what they say)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set lr_sigma=10")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: the key is empty")
    return key, parse_value(raw)


def parse_value(raw: str) -> Any:
    """JSON first (so 1e-5 is a number, which plain YAML 1.1 reads as a string), then YAML, else text."""
    text = raw.strip()
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return raw


_TOP_LEVEL = {"name", "scene", "engine", "gpu"}


def job_from_preset(preset: Preset, scene: str | None = None, overrides: list[str] | None = None) -> JobSpec:
    """The one place a preset becomes a training job, for the CLI and the console alike: the preset's
    values, its config with the overrides on top, and the scene."""
    if preset.kind != "plenoxels":
        raise ConfigError(f"preset {preset.name} is a {preset.kind} preset, not a training job", field="preset")
    return compose_job(preset.values, scene=scene, overrides=overrides, preset_name=preset.name)


def compose_job(
    values: dict[str, Any], scene: str | None = None, overrides: list[str] | None = None, preset_name: str | None = None
) -> JobSpec:
    """Preset values + scene + `key=value` overrides -> one validated job."""
    doc: dict[str, Any] = {k: v for k, v in values.items()}
    doc["config"] = dict(values.get("config") or {})
    doc["resources"] = dict(values.get("resources") or {}) or None
    if scene:
        doc["scene"] = scene
    for text in overrides or []:
        key, value = parse_assignment(text)
        if key in _TOP_LEVEL:
            doc[key] = value
        elif key.startswith("resources."):
            doc["resources"] = {**(doc["resources"] or {}), key.split(".", 1)[1]: value}
        else:
            doc["config"][key.removeprefix("config.")] = value
    if doc["resources"] is None:
        doc.pop("resources")
    if preset_name:
        doc["preset"] = preset_name
    try:
        return parse_job(doc)
    except JobValidationError as exc:
        if exc.field == "scene" and "required" in exc.message:
            raise ConfigError(
                "scene: this preset names no scene; give one (a pushed scene's name, an s3:// URI in the data "
                "bucket or a path under /data/): --scene on the command line, the scene field in the console",
                field="scene",
            ) from None
        raise ConfigError(f"{exc.field}: {exc.message}", field=exc.field) from None
