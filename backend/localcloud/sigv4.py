"""The local cloud's own endpoint checks SigV4, as AWS does: a request must be signed with the
local credentials that `local up` writes to SKYDECK_HOME (mode 0600), or it is refused.

The signature is recomputed with botocore's own signer from the request as it arrived (the
headers the client signed, its raw path and query, its body or the payload hash it declared) and
compared in constant time.
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from typing import Any

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from backend.core.local_credentials import LocalCredentials
from backend.localcloud.iam.sessions import RoleSession, RoleSessions

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


MAX_SKEW_S = 15 * 60  # AWS refuses a signature more than 15 minutes from its own clock


def _signed_at(stamp: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))
    except ValueError:
        return None


def check(environ: dict[str, Any], body: bytes, credentials: LocalCredentials, now: float | None = None) -> str | None:
    """None if the request is signed with `credentials` within the last 15 minutes (either way);
    otherwise why it is refused. An old signed request - a journal record, a captured call - is not
    served again."""
    return identify(environ, body, credentials, None, now)[1]


def identify(
    environ: dict[str, Any],
    body: bytes,
    credentials: LocalCredentials,
    sessions: RoleSessions | None,
    now: float | None = None,
) -> tuple[RoleSession | None, str | None]:
    """Who signed the request: (None, None) for the operator's own key, (session, None) for a role's
    temporary credentials, (None, why) when it is refused."""
    session = None
    header = environ.get("HTTP_AUTHORIZATION", "")
    match = _AUTH_RE.match(header.strip()) if header else None
    if match is not None and sessions is not None and match["key"].startswith("ASIA"):
        session = sessions.find(match["key"])
        if session is None:
            return None, "the security token included in the request is invalid (an unknown or old session key)"
        if session.expired(now):
            return None, "the security token included in the request is expired: fetch the role's credentials again"
        token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN", "")
        if not hmac.compare_digest(token, session.session_token):
            return None, "the security token included in the request is invalid"
        secret = LocalCredentials(session.access_key_id, session.secret_access_key)
        return session, _verify(environ, body, secret, now)
    return None, _verify(environ, body, credentials, now)


def _verify(environ: dict[str, Any], body: bytes, credentials: LocalCredentials, now: float | None) -> str | None:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header:
        return "the request is not signed: sign it with the local credentials (skydeck's clients do)"
    match = _AUTH_RE.match(header.strip())
    if match is None:
        return "the Authorization header is not an AWS Signature Version 4"
    if not hmac.compare_digest(match["key"], credentials.access_key_id):
        return "the access key is not this local cloud's (see SKYDECK_HOME/local/credentials)"
    stamp = environ.get("HTTP_X_AMZ_DATE", "")
    if not stamp.startswith(match["date"]):
        return "X-Amz-Date does not match the credential scope's date"
    signed_at = _signed_at(stamp)
    if signed_at is None:
        return "X-Amz-Date is not a time (YYYYMMDDTHHMMSSZ)"
    skew = (time.time() if now is None else now) - signed_at
    if abs(skew) > MAX_SKEW_S:
        return (
            f"the request was signed at {stamp}, {abs(skew) / 60:.0f} minutes from this machine's clock; "
            "signatures are good for 15 minutes, as on AWS: sign it again (and check the clock)"
        )
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    path = raw.split("?", 1)[0] if not raw.startswith("http") else "/" + raw.split("/", 3)[-1].split("?", 1)[0]
    query = environ.get("QUERY_STRING", "")
    host = environ.get("HTTP_HOST", "localhost")
    headers = {}
    for name in match["signed"].split(";"):
        value = _header(environ, name)
        if value is None:
            return f"the signed header {name!r} is missing"
        headers[name] = value
    request = AWSRequest(
        method=environ["REQUEST_METHOD"],
        url=f"http://{host}{path}" + (f"?{query}" if query else ""),
        headers=headers,
        data=body,
    )
    request.context["timestamp"] = stamp
    signer_class = S3SigV4Auth if match["service"] == "s3" else SigV4Auth
    signer = signer_class(
        Credentials(credentials.access_key_id, credentials.secret_access_key), match["service"], match["region"]
    )
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["signature"]):
        return "the signature does not match: sign with the local credentials in SKYDECK_HOME/local/credentials"
    return None
