"""`skydeck api`: where the jobs API answers, and how to call it."""

from __future__ import annotations

import typer

from cli.common import JsonOpt, ProfileOpt, backend, out, print_json

app = typer.Typer(no_args_is_help=True, help="The jobs API.")


@app.command("url")
def api_url(json_out: JsonOpt = False, profile: ProfileOpt = None) -> None:
    """The jobs API URL and how to authenticate (so the original curl commands work)."""
    info = backend(profile).api_endpoint()
    if json_out:
        print_json(info)
        return
    out.print(info["url"])
    for k, v in info["headers"].items():
        out.print(f"header: {k}: {v}")
    out.print(f"auth: {info['auth']}")
    hdr = " ".join(f"-H '{k}: {v}'" for k, v in info["headers"].items())
    out.print(f"try:  curl -s {hdr} {info['url']}")
