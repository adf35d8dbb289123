"""Where the jobs API is and how to authenticate to it, for curl users and scripts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from backend.core.errors import LocalCloudDown

if TYPE_CHECKING:
    from backend.context import Context


def api_endpoint(ctx: Context) -> dict[str, Any]:
    out = ctx.stacks.outputs("api")
    if ctx.profile.is_local:
        try:
            state = json.loads(ctx.home.local_state_file.read_text())
        except (OSError, ValueError):
            raise LocalCloudDown("the local cloud is not running; start it with: skydeck local up") from None
        try:
            token = ctx.home.local_token_file.read_text().strip()
        except FileNotFoundError:
            raise LocalCloudDown(
                f"the jobs API's token {ctx.home.local_token_file} is gone (and with it every client's access); "
                "make a new one by restarting the local cloud: skydeck local down && skydeck local up"
            ) from None
        return {
            # the API's name leads the path, as its own host name does on AWS (two profiles' APIs may share
            # a stage); the name, unlike the id, is the same after a restart of the local cloud
            "url": f"{state['api_base']}/{_api_name(ctx, out['ApiId'])}/{out['Stage']}/",
            "headers": {"Authorization": f"Bearer {token}"},
            "auth": "bearer token from SKYDECK_HOME/local/api-token (mode 0600)",
        }
    region = ctx.profile.region
    return {
        "url": out["ApiUrl"],
        "headers": {},
        "auth": f"AWS_IAM: sign with SigV4, e.g. curl --aws-sigv4 'aws:amz:{region}:execute-api' "
        '--user "$KEY:$SECRET"',
    }


def _api_name(ctx: Context, api_id: str) -> str:
    return str(ctx.clients.client("apigateway").get_rest_api(restApiId=api_id)["name"])
