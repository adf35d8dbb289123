"""The local cloud's instance metadata service (IMDSv2, tokens required), one per local cloud.

An EC2 host asks 169.254.169.254 who it is and for its instance role's credentials. Here each
instance answers under its own path: `http://127.0.0.1:PORT/<instance-id>` is the base a host is
given (`AWS_EC2_METADATA_SERVICE_ENDPOINT` for botocore and the AWS CLI, `SKYDECK_IMDS` for the
set-up script). Two kinds of instance are known:

- the EC2 instances moto holds (an Auto Scaling group's, a rehearsed fleet host): their AMI, type
  and instance profile come from moto, their role from the profile;
- the local executors the cloud runs itself (`local-1`, ...), registered with the fleet's role.

As on EC2: a token comes from `PUT /latest/api/token` with a TTL header (1-21600 s), every GET
needs it in `X-aws-ec2-metadata-token` (401 without), and the role's credentials are temporary
(an STS session of the role, renewed before it ends).
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.localcloud.iam.sessions import REFRESH_BEFORE_S, RoleSession, RoleSessions

MAX_TOKEN_TTL_S = 21600


@dataclass(frozen=True)
class Instance:
    instance_id: str
    ami_id: str
    instance_type: str
    role_arn: str  # "" when the instance has no profile
    profile_arn: str
    region: str


def _moto_instance(instance_id: str, account: str, region: str) -> Instance | None:
    """An instance as moto's EC2 holds it, with its instance profile's role."""
    from moto.ec2.models import ec2_backends
    from moto.iam.models import iam_backends

    try:
        found = ec2_backends[account][region].get_instance(instance_id)
    except Exception:  # noqa: BLE001 - moto's not-found
        return None
    # run_instances keeps the IamInstanceProfile it was given ({"Arn": ...} or {"Name": ...}); an Auto
    # Scaling group's instances have none there, only in the group's launch template
    profile = found.iam_instance_profile or _group_profile(account, region, instance_id)
    wanted_arn, wanted_name = str(profile.get("Arn") or ""), str(profile.get("Name") or "")
    role_arn = profile_arn = ""
    for candidate in iam_backends[account]["aws"].instance_profiles.values():
        if candidate.arn == wanted_arn or candidate.name == wanted_name:
            role_arn = candidate.roles[0].arn if candidate.roles else ""
            profile_arn = candidate.arn
            break
    return Instance(instance_id, str(found.image_id), str(found.instance_type), role_arn, profile_arn, region)


def _group_profile(account: str, region: str, instance_id: str) -> dict[str, str]:
    """The instance profile an Auto Scaling group's launch template gives the instances it starts
    (moto starts them without it)."""
    from moto.autoscaling.models import autoscaling_backends

    for group in autoscaling_backends[account][region].autoscaling_groups.values():
        if not any(state.instance.id == instance_id for state in group.instance_states):
            continue
        template = getattr(group, "ec2_launch_template", None)
        if template is None:
            return {}
        data = template.latest_version().data
        profile = data.get("IamInstanceProfile") or {}
        return profile if isinstance(profile, dict) else {}
    return {}


class MetadataService:
    def __init__(self, sessions: RoleSessions, account: str, region: str) -> None:
        self.sessions = sessions
        self.account = account
        self.region = region
        self._lock = threading.Lock()
        self._local: dict[str, Instance] = {}
        self._tokens: dict[str, float] = {}  # token -> expires at
        self._credentials: dict[str, RoleSession] = {}  # instance id -> its current session
        self._server: http.server.ThreadingHTTPServer | None = None

    # -- instances -------------------------------------------------------------------------------
    def register(self, instance: Instance) -> None:
        with self._lock:
            self._local[instance.instance_id] = instance

    def instance(self, instance_id: str) -> Instance | None:
        with self._lock:
            known = self._local.get(instance_id)
        if known is not None:
            return known
        found = _moto_instance(instance_id, self.account, self.region)
        if found is not None and found.role_arn:
            # kept: a host whose group was just scaled to zero still runs its last steps (report, tag),
            # and EC2 answers its metadata until it is really gone
            self.register(found)
        return found

    def credentials(self, instance: Instance) -> RoleSession:
        with self._lock:
            current = self._credentials.get(instance.instance_id)
            if current is None or current.expires_at - time.time() < 2 * REFRESH_BEFORE_S:
                current = self.sessions.mint(instance.role_arn, instance.instance_id, duration_s=6 * 3600)
                self._credentials[instance.instance_id] = current
            return current

    # -- tokens ------------------------------------------------------------------------------------
    def new_token(self, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + ttl_s
        return token

    def token_ok(self, token: str) -> bool:
        with self._lock:
            return self._tokens.get(token, 0.0) > time.time()

    # -- answers -----------------------------------------------------------------------------------
    def answer(self, instance: Instance, key: str) -> str | None:
        """The text IMDS answers for /latest/meta-data/<key> (None: 404)."""
        role_name = instance.role_arn.rsplit("/", 1)[-1]
        fixed: dict[str, Callable[[], str]] = {
            "": lambda: "ami-id\niam/\ninstance-id\ninstance-type\nplacement/",
            "instance-id": lambda: instance.instance_id,
            "ami-id": lambda: instance.ami_id,
            "instance-type": lambda: instance.instance_type,
            "placement/region": lambda: instance.region,
            "placement/availability-zone": lambda: instance.region + "a",
        }
        if key in fixed:
            return fixed[key]()
        if not instance.role_arn:
            return None
        if key == "iam/info":
            return json.dumps(
                {"Code": "Success", "InstanceProfileArn": instance.profile_arn, "InstanceProfileId": "AIPALOCAL"}
            )
        if key == "iam/security-credentials/":
            return role_name
        if key == f"iam/security-credentials/{role_name}":
            session = self.credentials(instance)
            return json.dumps(
                {
                    "Code": "Success",
                    "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "Type": "AWS-HMAC",
                    "AccessKeyId": session.access_key_id,
                    "SecretAccessKey": session.secret_access_key,
                    "Token": session.session_token,
                    "Expiration": session.expiration_iso(),
                }
            )
        return None

    # -- serving -----------------------------------------------------------------------------------
    def serve(self, port: int = 0) -> int:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _send(self, code: int, text: str) -> None:
                body = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _split(self) -> tuple[str, str]:
                _, instance_id, rest = (self.path.split("?", 1)[0] + "/").split("/", 2)
                return instance_id, "/" + rest.rstrip("/") if rest.rstrip("/") else "/"

            def do_PUT(self) -> None:  # noqa: N802
                instance_id, rest = self._split()
                if rest != "/latest/api/token" or service.instance(instance_id) is None:
                    self._send(404, "")
                    return
                raw = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOKEN_TTL_S:
                    self._send(400, "")
                    return
                self._send(200, service.new_token(int(raw)))

            def do_GET(self) -> None:  # noqa: N802
                instance_id, rest = self._split()
                if not service.token_ok(self.headers.get("X-aws-ec2-metadata-token", "")):
                    self._send(401, "")  # IMDSv2 only: no token, no answer
                    return
                instance = service.instance(instance_id)
                raw_key = self.path.split("?", 1)[0].split("/", 2)[-1].removeprefix("latest/meta-data/")
                if instance is None or not rest.startswith("/latest/meta-data"):
                    self._send(404, "")
                    return
                text = service.answer(instance, raw_key)
                self._send(200, text) if text is not None else self._send(404, "")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="imds", daemon=True).start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
