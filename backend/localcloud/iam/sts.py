"""The STS calls the local cloud answers itself, so that the credentials it hands out are its own.

- `GetCallerIdentity` signed by a role's session names the assumed role, as on AWS.
- `AssumeRole` signed by the operator mints a session for any role of the account. (AWS would also
  check the role's trust policy; the templates' roles trust only Lambda and EC2, and the operator
  is the local cloud's administrator, who may act as any of them to see what they may do.)

Everything else goes to moto.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from backend.localcloud.iam.requests import ApiRequest
from backend.localcloud.iam.sessions import RoleSession, RoleSessions

_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
MAX_SESSION_S = 12 * 3600


def _form(request: ApiRequest) -> dict[str, str]:
    merged = {k: v[0] for k, v in parse_qs(request.query).items()}
    merged.update({k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()})
    return merged


def _error(code: str, message: str, status: str = "400 Bad Request") -> tuple[str, bytes]:
    body = (
        f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{html.escape(message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
    )
    return status, body.encode()


def _role_exists(role_arn: str) -> bool:
    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return False
    try:
        iam_backends[parts[4]][parts[1]].get_role(parts[5].rsplit("/", 1)[-1])
    except Exception:  # noqa: BLE001 - moto's not-found
        return False
    return True


def answer(request: ApiRequest, session: RoleSession | None, sessions: RoleSessions) -> tuple[str, bytes] | None:
    form = _form(request)
    action = form.get("Action", "")
    if action == "GetCallerIdentity" and session is not None:
        body = (
            f'<GetCallerIdentityResponse xmlns="{_NS}"><GetCallerIdentityResult>'
            f"<Arn>{html.escape(session.assumed_role_arn)}</Arn>"
            f"<UserId>AROA{session.access_key_id[4:]}:{html.escape(session.session_name)}</UserId>"
            f"<Account>{session.role_arn.split(':')[4]}</Account>"
            "</GetCallerIdentityResult><ResponseMetadata><RequestId>local</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        )
        return "200 OK", body.encode()
    if action != "AssumeRole" or session is not None:
        return None  # a role assuming another is judged by its policies (none allows it)
    role_arn = form.get("RoleArn", "")
    name = form.get("RoleSessionName", "")
    if not name:
        return _error("ValidationError", "RoleSessionName is required")
    if not _role_exists(role_arn):
        return _error(
            "AccessDenied", f"no role {role_arn!r} in the local cloud: deploy its stack first", "403 Forbidden"
        )
    try:
        duration = int(form.get("DurationSeconds", "3600"))
    except ValueError:
        return _error("ValidationError", "DurationSeconds must be a whole number of seconds")
    if not 900 <= duration <= MAX_SESSION_S:
        return _error("ValidationError", f"DurationSeconds must be between 900 and {MAX_SESSION_S}")
    minted = sessions.mint(role_arn, name, duration)
    body = (
        f'<AssumeRoleResponse xmlns="{_NS}"><AssumeRoleResult><Credentials>'
        f"<AccessKeyId>{minted.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{minted.secret_access_key}</SecretAccessKey>"
        f"<SessionToken>{minted.session_token}</SessionToken>"
        f"<Expiration>{minted.expiration_iso()}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>AROA{minted.access_key_id[4:]}:{html.escape(name)}</AssumedRoleId>"
        f"<Arn>{html.escape(minted.assumed_role_arn)}</Arn></AssumedRoleUser>"
        "</AssumeRoleResult><ResponseMetadata><RequestId>local</RequestId></ResponseMetadata></AssumeRoleResponse>"
    )
    return "200 OK", body.encode()
