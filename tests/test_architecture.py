"""docs/architecture.md is kept true: the import contracts and typed contracts it names are the code's."""

from __future__ import annotations

import dataclasses
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "architecture.md").read_text()


def test_the_import_contracts_named_are_the_ones_lint_imports_checks() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    enforced = {c["name"] for c in config["tool"]["importlinter"]["contracts"]}
    section = PAGE.split("## What may import what", 1)[1].split("\n## ", 1)[0]
    named = {m.rstrip(".") for m in re.findall(r"^- \*\*(.+?)\*\*", section, flags=re.M)}
    assert named == enforced


def test_every_typed_contract_named_is_a_dataclass_where_the_page_says() -> None:
    section = PAGE.split("## Typed contracts", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `([\w/]+)\.py` \|", section, flags=re.M)
    assert len(rows) >= 8
    for name, path in rows:
        module = importlib.import_module(path.replace("/", "."))
        assert dataclasses.is_dataclass(getattr(module, name)), (name, path)


def test_the_interface_is_cheap_to_import() -> None:
    """The CLI answers in tenths of a second: the one door must not load the SDS-Inf start path's numpy
    and scipy, boto3, or an engine's torch before a command needs them."""
    import subprocess
    import sys

    code = (
        "import sys, backend.interface as door\n"
        "for name in door.__all__: getattr(door, name)\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.split()
    )
    assert not loaded & {"numpy", "scipy", "boto3", "torch", "textual", "backend.sdsinf.runs"}


def _graph():  # noqa: ANN202
    import grimp

    return grimp.build_graph("cli", "tui", "backend", "gpu_executor", "lambda_src")


def test_nothing_outside_the_backend_imports_it_but_through_the_interface() -> None:
    """What the one-door contract means, asked of the import graph directly: every import of a backend
    module from cli, tui or the shipped code lands in backend.interface."""
    graph = _graph()
    outside = [m for m in graph.modules if not (m == "backend" or m.startswith("backend."))]
    reached = {
        (importer, imported)
        for importer in outside
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported == "backend" or imported.startswith("backend.")
    }
    assert reached, "the front ends import nothing of the backend: the graph was not built"
    stray = sorted((a, b) for a, b in reached if not (b == "backend.interface" or b.startswith("backend.interface.")))
    assert stray == []


def test_the_one_door_contract_protects_every_backend_package_but_the_interface() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    door = next(c for c in config["tool"]["importlinter"]["contracts"] if c["name"].startswith("One door"))
    children = {
        p.stem if p.is_file() else p.name
        for p in (ROOT / "backend").iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")
    }
    assert {f"backend.{c}" for c in children - {"interface"}} == set(door["protected_modules"])
    assert door["allowed_importers"] == ["backend"]


def test_every_name_the_door_lists_resolves_to_what_its_type_imports_say() -> None:
    """The door loads its names on first use: each one listed loads, from the module its TYPE_CHECKING
    import names, and nothing else answers."""
    import ast

    import backend.interface as door

    tree = ast.parse((ROOT / "backend" / "interface" / "__init__.py").read_text())
    declared = {
        (alias.asname or alias.name): (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module not in ("__future__", "typing")
        for alias in node.names
    }
    assert declared == door._WHERE and set(door.__all__) == set(declared)
    for name, (module, attr) in declared.items():
        assert getattr(door, name) is getattr(importlib.import_module(module), attr), name
    with pytest.raises(AttributeError, match="no attribute 'Context'"):
        door.Context  # noqa: B018 - the raw context is not handed out


def test_no_import_circle_between_files_of_the_backend_or_the_cli() -> None:
    # an import made only for a type annotation (under TYPE_CHECKING) is not a circle: it never runs
    import grimp

    graph = grimp.build_graph("backend", "cli", exclude_type_checking_imports=True)
    circles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported.startswith(("backend", "cli")) and graph.chain_exists(importer=imported, imported=module):
                circles.append(f"{module} -> {imported} -> ... -> {module}")
    assert not circles, circles


def test_every_typed_contract_is_type_checked_strictly() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    strict = {
        module
        for override in config["overrides"]
        if override.get("disallow_untyped_defs") and override.get("disallow_any_generics")
        for module in override["module"]
    }
    section = PAGE.split("## Typed contracts", 1)[1].split("\n## ", 1)[0]
    defined_in = {path.replace("/", ".") for path in re.findall(r"^\| `\w+` \| `([\w/]+)\.py` \|", section, flags=re.M)}
    missing = {
        m for m in defined_in if m not in strict and not any(m.startswith(s[:-1]) for s in strict if s.endswith("*"))
    }
    assert not missing, f"typed contracts not checked strictly: {sorted(missing)}"
    assert set(config["files"]) == {"backend", "cli", "tui", "lambda_src", "gpu_executor"}
