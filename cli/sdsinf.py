"""`skydeck sdsinf`: SDS-Inf data, runs, partitions and the Server baseline."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.choices import Partition, ServerMode, Variant, Wire, value
from cli.common import JsonOpt, ProfileOpt, YesOpt, backend, confirm, err, out, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="SDS-Inf: sparse DNN inference (Graph Challenge networks).")
data_app = typer.Typer(no_args_is_help=True, help="Graph Challenge data: generate, import, upload.")
app.add_typer(data_app, name="data")
server_app = typer.Typer(no_args_is_help=True, help="The always-on Server baseline (takes runs from a queue).")
app.add_typer(server_app, name="server")


@data_app.command("generate")
def sdsinf_generate(
    out: Annotated[Path, typer.Option(help="Directory to write the Graph Challenge layout into.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    layers: Annotated[int, typer.Option(help="Network depth.")] = 120,
    inputs: Annotated[int, typer.Option(help="How many input images.")] = 1000,
    seed: Annotated[int, typer.Option(help="Same seed, same network and inputs.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """A RadiX-Net style network and inputs, with the truth categories (no download needed)."""
    from backend.interface import generate_sdsinf

    info = generate_sdsinf(out, neurons, layers, inputs, seed)
    if json_out:
        print_json(info)
    else:
        sys.stdout.write(
            f"wrote a {neurons}-neuron, {layers}-layer network and {inputs} inputs to {info['out']}; "
            f"{info['categories']} categories in the truth file\n"
        )


@app.command("infer")
def sdsinf_infer(
    data: Annotated[Path, typer.Option(help="A Graph Challenge directory.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")],
    layers: Annotated[int, typer.Option(help="Network depth.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the categories here, one a line.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run inference on this machine; check against the truth file when there is one. The parsed files
    are kept in SKYDECK_HOME/cache/sdsinf under a digest of their contents, so a second run starts at once."""
    from backend.interface import infer_sdsinf

    result = infer_sdsinf(data, neurons, layers)
    if out_file is not None:
        out_file.write_text("".join(f"{c}\n" for c in result.categories))
    if json_out:
        print_json(result.to_dict())
    else:
        check = {
            None: "no truth file to check against",
            True: "matches the truth file",
            False: "DIFFERS from the truth file",
        }
        out.print(
            f"{len(result.categories)} of {result.inputs} inputs categorised in {result.seconds:.3f}s "
            f"({result.edges_per_s / 1e9:.2f} billion edges/s); {check[result.matches_truth]}"
        )
        if out_file is None and len(result.categories) <= 50:
            out.print(" ".join(map(str, result.categories)))
    if result.matches_truth is False:
        raise typer.Exit(1)


@data_app.command("import")
def sdsinf_import(
    src: Annotated[
        Path, typer.Argument(help="The download: a directory with neuron{N}.tar.gz, sparse-images-{N}.tsv.gz, ...")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the Graph Challenge layout into.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    name: Annotated[str | None, typer.Option(help="Also upload it to the sdsinf stack under this name.")] = None,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Unpack and validate an official Graph Challenge download (and upload it with --name)."""
    from backend.interface import import_sdsinf

    info = import_sdsinf(src, out_dir, neurons)
    if name:
        info["uploaded"] = backend(profile).upload_sdsinf(out_dir, neurons, int(info["layers"]), name)
    if json_out:
        print_json(info)
        return
    out.print(
        f"{out_dir}: {neurons} neurons x {info['layers']} layers, {info['inputs']} inputs, {info['edges']:,} edges"
        + (", truth file present" if info["truth"] else ", no truth file")
    )
    if name:
        out.print(f"uploaded as {name}; run it with: skydeck sdsinf run c1_1024n_4w_10000bs_queue --data {name}")
    else:
        out.print(
            f"next: skydeck sdsinf data upload --data {out_dir} --neurons {neurons} "
            f"--layers {info['layers']} --name NAME"
        )


def _server_status_line(status: dict[str, Any]) -> str:
    if not status["running"]:
        return f"always-on server: not running ({status['where']})"
    where = f"pid {status['pid']}" if "pid" in status else ", ".join(status.get("instances", []))
    return f"always-on server: running as {status['where']} ({where})"


@server_app.command("up")
def sdsinf_server_up(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Start the always-on server (a local process on the local cloud, an EC2 instance on AWS)."""
    status = backend(profile).sdsinf_server("up")
    print_json(status) if json_out else out.print(
        _server_status_line(status) + "; run with: --variant server --server service"
    )


@server_app.command("down")
def sdsinf_server_down(yes: YesOpt = False, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Stop the always-on server (it finishes the run in hand; EC2 instances are terminated)."""
    door = backend(profile)
    status = door.sdsinf_server("status")
    if status["running"]:
        confirm(f"stop the always-on SDS-Inf server ({status['where']})?", yes)
    status = door.sdsinf_server("down")
    if json_out:
        print_json(status)
    else:
        out.print(_server_status_line(status))


@server_app.command("status")
def sdsinf_server_status(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Whether the always-on server runs, and where."""
    status = backend(profile).sdsinf_server("status")
    if json_out:
        print_json(status)
    else:
        out.print(_server_status_line(status))


@app.command("partition")
def sdsinf_partition(
    data: Annotated[Path, typer.Option(help="A Graph Challenge directory.")],
    workers: Annotated[int, typer.Option(min=1, help="Workers to partition the neurons over.")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    layers: Annotated[int, typer.Option(help="Network depth.")] = 120,
    json_out: JsonOpt = False,
) -> None:
    """Rows and bytes sent between workers per layer: the 1-D row partition beside the others."""
    from backend.interface import PARTITIONS, partition_report

    report = partition_report(data, neurons, layers, workers)
    if json_out:
        print_json(report)
        return
    from rich.table import Table  # rich is imported only to draw

    table = Table("layer", *[f"{p} rows" for p in PARTITIONS], *[f"{p} KB" for p in PARTITIONS], box=None)
    shown = list(range(min(layers, 5))) + ([layers - 1] if layers > 5 else [])
    for i in shown:
        table.add_row(
            str(i + 1),
            *[f"{report[p]['rows_per_layer'][i]:,}" for p in PARTITIONS],
            *[f"{report[p]['bytes_per_layer'][i] / 1e3:,.1f}" for p in PARTITIONS],
        )
    table.add_row(
        "all",
        *[f"{report[p]['rows']:,}" for p in PARTITIONS],
        *[f"{report[p]['bytes'] / 1e3:,.1f}" for p in PARTITIONS],
    )
    out.print(table)
    base = report["row"]["rows"] or 1
    out.print("  ".join(f"{p}: {report[p]['rows'] / base:.2f}x the row partition's rows" for p in PARTITIONS))


@data_app.command("upload")
def sdsinf_upload(
    data: Annotated[Path, typer.Option(help="A Graph Challenge directory.")],
    name: Annotated[str, typer.Option(help="Name to run it by (e.g. radixnet-1024n-120l).")],
    neurons: Annotated[int, typer.Option(help="1024 | 4096 | 16384 | 65536")] = 1024,
    layers: Annotated[
        int | None, typer.Option(help="Network depth (default: every layer the directory holds).", min=1)
    ] = None,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Convert a Graph Challenge directory and upload it to the sdsinf stack's buckets."""
    info = backend(profile).upload_sdsinf(data, neurons, layers, name)
    if json_out:
        print_json(info)
    else:
        out.print(
            f"uploaded {name}: {info['neurons']} neurons x {info['layers']} layers, {info['inputs']} inputs"
            + (", with truth" if info["truth"] else "")
        )


@app.command("run")
def sdsinf_run(
    preset: Annotated[
        str | None, typer.Argument(help="An sdsinf preset, e.g. b1_1024n_1w_10000bs_serial (or give --payload).")
    ] = None,
    payload: Annotated[
        Path | None,
        typer.Option("--payload", help="One of the original's payload files, run as it is (instead of a preset)."),
    ] = None,
    variant: Annotated[Variant | None, typer.Option(help="The variant (default: the preset's).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=256, help="Workers (queue and object variants).")] = None,
    data: Annotated[str | None, typer.Option(help="Uploaded data name (default: the preset's).")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Inputs per batch.")] = None,
    num_data: Annotated[
        int | None, typer.Option("--num-data", min=1, help="How many of the inputs to infer (the original's numData).")
    ] = None,
    bfr: Annotated[
        int | None,
        typer.Option(min=1, help="Invocation tree fan-out (the original's bfr; default: all workers from the root)."),
    ] = None,
    levels: Annotated[
        int | None,
        typer.Option(min=1, help="Invocation tree depth (the original's nlevels); must fit --bfr and --workers."),
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, max=20, help="Run K times and report medians.")] = 1,
    partition: Annotated[
        Partition | None, typer.Option(help="row is the original's 1-D split; queue and object variants")
    ] = None,
    server: Annotated[
        ServerMode, typer.Option(help="server variant: job (one run per instance/process) or service (always-on)")
    ] = ServerMode.job,
    wire: Annotated[
        Wire | None,
        typer.Option(
            help="How blocks travel: original (the original's wire, counted and ordered as it does), "
            "compact (the same wire, true nonzeros in order: fewer bytes) or npz"
        ),
    ] = None,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """Launch a run and stream each worker's per-layer metrics until it ends."""
    from backend.interface import ConfigError, LiveMetric

    door = backend(profile)
    if (preset is None) == (payload is None):
        raise ConfigError("give a PRESET or --payload FILE (one of them)")
    plan = (
        door.plan_payload(payload, data=data, variant=value(variant), wire=value(wire))
        if payload
        else door.plan_run(
            preset or "",
            variant=value(variant),
            workers=workers,
            data=data,
            batch=batch,
            partition=value(partition),
            server_mode=value(server) or "job",
            num_data=num_data,
            bfr=bfr,
            nlevels=levels,
            wire=value(wire),
        )
    )

    def show(metric: LiveMetric) -> None:
        if json_out:
            sys.stdout.write(json.dumps({"event": "layer", **asdict(metric)}) + "\n")
            sys.stdout.flush()
        elif metric.layer % 10 == 9 or metric.layer == metric.layers - 1:
            err.print(
                f"  worker {metric.worker} batch {metric.batch} layer {metric.layer + 1}/{metric.layers}"
                f"  rows {metric.rows_active}  {metric.duration_s * 1000:.1f} ms"
            )

    check = {None: "no truth to check", True: "categories match the truth", False: "categories DIFFER from the truth"}
    summaries = []
    for _ in range(repeat):
        started = door.start_run(plan)
        if json_out:
            sys.stdout.write(json.dumps({"event": "started", **started.to_dict()}) + "\n")
        else:
            err.print(f"run {started.run_id} ({started.variant}, data {started.data}) started")
        summary = door.follow_run(started.run_id, show)
        summaries.append(summary)
        if json_out:
            sys.stdout.write(json.dumps({"event": "summary", **summary.to_dict()}) + "\n")
        else:
            cost = summary.extra
            out.print(
                f"run {summary.run_id}: {summary.categories} of {summary.inputs} inputs categorised, "
                f"{summary.edges_per_s / 1e9:.2f} billion edges/s, runtime {summary.runtime_s:.1f}s, "
                f"est. ${cost['cost_usd']:.6f} ({cost['gb_seconds']:.1f} GB-s, {cost['requests']} requests); "
                f"{check[summary.matches_truth]}"
            )
    if repeat > 1:
        from backend.interface import median_of

        med = median_of([s.to_dict() for s in summaries])
        if json_out:
            sys.stdout.write(json.dumps({"event": "median", **med}) + "\n")
        else:
            out.print(
                f"median of {repeat}: runtime {med['runtime_s']:.2f}s, compute {med['compute_s']:.2f}s, "
                f"{med['edges_per_s'] / 1e9:.2f} billion edges/s, est. ${med['cost_usd']:.6f}"
            )
    if any(s.matches_truth is False for s in summaries):
        raise typer.Exit(1)


@app.command("runs")
def sdsinf_runs(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """Runs, newest first: finished, failed, and running (a run cut off is found here, failed and its
    queues removed)."""
    runs = backend(profile).runs()
    if json_out:
        print_json([r.to_dict() for r in runs])
        return
    # the short columns first, the config (a long name) last: at 80 columns the rest stays whole
    rows = [
        [
            r.run_id, r.state, r.variant, str(r.workers), str(r.inputs),
            {None: "-", True: "ok", False: "DIFFERS"}[r.matches_truth], f"{r.runtime_s:.1f}", r.config,
        ]
        for r in runs
    ]  # fmt: skip
    print_table(["run", "state", "variant", "workers", "inputs", "truth", "runtime s", "config"], rows)


@app.command("show")
def sdsinf_show(run_id: str, json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """One run's summary, its metrics file and what it wrote."""
    info = backend(profile).run_details(run_id)
    if json_out:
        print_json(info)
        return
    if info.get("state") == "RUNNING":
        out.print(f"{'run_id':<14} {info['run_id']}")
        out.print(f"{'state':<14} RUNNING (no summary yet; its live metrics are in the console's SDS-Inf screen)")
        out.print(f"{'config':<14} {info['config']}  ({info['variant']}, {info['workers']} worker(s))")
        return
    if info.get("state") == "FAILED":
        out.print(f"{'run_id':<14} {info['run_id']}")
        out.print(f"{'state':<14} [red]FAILED[/red]", markup=True)
        out.print(f"{'error':<14} {info.get('error') or 'no reason recorded'}")
        out.print("files: " + ", ".join(info["files"]))
        return
    for key in ("run_id", "config", "variant", "partition", "workers", "inputs", "categories", "matches_truth"):
        out.print(f"{key:<14} {info[key]}")
    out.print(f"{'runtime':<14} {float(info['runtime_s']):.2f} s")
    out.print(f"{'edges/s':<14} {info['edges_per_s'] / 1e9:.2f} billion")
    metrics = info.get("metrics") or {}
    if metrics:  # the run's metrics.csv row, in the original's columns
        out.print("metrics.csv:")
        width = max(len(k) for k in metrics)
        for column, value in metrics.items():
            out.print(f"  {column:<{width}}  {value}")
    out.print("files: " + ", ".join(info["files"]))


@app.command("fetch")
def sdsinf_fetch(
    run_id: Annotated[str, typer.Argument(help="A run id, or any unique prefix of one.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the run's files into.")],
    repeat: Annotated[
        int,
        typer.Option(
            min=1,
            max=20,
            help="Also take the K-1 finished runs before RUN of the same config, variant, workers and "
            "inputs (each into OUT/RUN_ID/) and write the master files as the median over the K runs.",
        ),
    ] = 1,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace files of the same name already in --out.")
    ] = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """A run's files: metrics, every worker's layerstats, categories, summary and request, plus the
    original's master_metrics_CONFIG.csv and master_layerstats_CONFIG.csv of the same run."""
    run_ids, written = backend(profile).fetch_run(run_id, out_dir, repeat, overwrite=overwrite)
    # every path as the operator named --out: relative where --out was
    shown = [out_dir / p.resolve().relative_to(out_dir.resolve()) for p in written]
    if json_out:
        print_json({"run_id": run_ids[0], "runs": run_ids, "files": [str(p) for p in shown]})
        return
    for path in shown:
        out.print(str(path))


@app.command("compare")
def sdsinf_compare(
    run_id: Annotated[str, typer.Argument(help="A run id, or any unique prefix of one.")],
    with_: Annotated[
        Path,
        typer.Option(
            "--with",
            help="A metrics file of the original's form (its master_metrics_*.csv), or `published`: the "
            "original's published c1 run (Queue, 8 workers), which skydeck keeps.",
        ),
    ],
    json_out: JsonOpt = False,
    profile: ProfileOpt = None,
) -> None:
    """This run's metrics beside a published run's, column by column, with the ratio (ours / theirs)."""
    full_id, rows = backend(profile).compare_run(run_id, with_)
    if json_out:
        print_json({"run_id": full_id, "with": str(with_), "columns": [r.to_dict() for r in rows]})
        return
    # print_table: column names are never cut (three began with the same 21 characters), TSV when piped
    print_table(
        ["column", "this run", "published c1" if str(with_) in ("published", "c1") else with_.name, "ratio"],
        [[r.column, r.ours, r.theirs, "" if r.ratio is None else f"{r.ratio:.3g}"] for r in rows],
    )
