"""`skydeck sdsinf data import`: an official Graph Challenge download, made ready to run.

The challenge distributes `neuron{N}.tar.gz` (the layers), `sparse-images-{N}.tsv.gz` (the inputs)
and `neuron{N}-l{L}-categories.tsv` (the truth). Import unpacks whichever of those it finds (or
takes them already unpacked), writes the layout the loader reads, and validates every file before
saying yes: a bad line is named with its file and line number. Archives are unpacked with
tarfile's `data` filter, so a member cannot write outside the target directory.
"""

from __future__ import annotations

import gzip
import re
import shutil
import tarfile
from pathlib import Path

from backend.core.errors import ConfigError


def detect_layers(out: Path, neurons: int) -> int:
    layer_dir = out / f"neuron{neurons}"
    numbers = [
        int(m.group(1)) for p in layer_dir.glob(f"n{neurons}-l*.tsv") if (m := re.search(r"-l(\d+)\.tsv$", p.name))
    ]
    if not numbers:
        raise ConfigError(f"{layer_dir}: no layer files n{neurons}-l1.tsv ... (expected inside neuron{neurons}.tar.gz)")
    layers = max(numbers)
    missing = sorted(set(range(1, layers + 1)) - set(numbers))
    if missing:
        raise ConfigError(
            f"{layer_dir}: layer file(s) missing: " + ", ".join(f"n{neurons}-l{k}.tsv" for k in missing[:5])
        )
    return layers


def import_download(src: Path, out: Path, neurons: int) -> dict[str, object]:
    if not src.exists():
        raise ConfigError(f"{src}: no such file or directory")
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(src.iterdir()) if src.is_dir() else [src]
    unpacked: list[str] = []
    for path in sources:
        name = path.name
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            try:
                with tarfile.open(path) as tar:
                    tar.extractall(out, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise ConfigError(f"{path}: not a readable tar archive ({exc})") from None
            unpacked.append(name)
        elif name.endswith(".tsv.gz"):
            target = out / name.removesuffix(".gz")
            try:
                with gzip.open(path, "rb") as fin, open(target, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            except (OSError, EOFError) as exc:
                raise ConfigError(f"{path}: not a readable gzip file ({exc})") from None
            unpacked.append(name)
        elif src.resolve() != out.resolve() and (
            name.endswith(".tsv") or (path.is_dir() and name == f"neuron{neurons}")
        ):
            if path.is_dir():
                shutil.copytree(path, out / name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, out / name)
            unpacked.append(name)
    layers = detect_layers(out, neurons)
    from backend.sdsinf.data import load_dataset

    net, y, truth = load_dataset(out, neurons, layers)
    return {
        "out": str(out),
        "neurons": neurons,
        "layers": layers,
        "inputs": int(y.shape[0]),
        "edges": int(net.edges),
        "truth": truth is not None,
        "unpacked": unpacked,
    }
