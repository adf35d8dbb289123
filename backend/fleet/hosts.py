"""Each fleet host: what it booted from, how its boot went, and what its executor is doing.

Three sources, joined by instance id: the group (Auto Scaling: which instances, the group's size), EC2
(AMI, type, the `skydeck:boot` tags the set-up writes) and the bucket (`fleet/hosts/ID/boot.json`,
`boot.log` and `executor.json`). Boot records outlive their instances, so a host whose boot failed -
which stops the group, see gpu_executor/host/setup.sh - is still listed, with its reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from backend.core.errors import ConfigError, NotFoundError, SkydeckError
from backend.core.text import shown
from backend.stacks.service import Stacks
from gpu_executor.host.beacon import HOSTS_PREFIX, beacon_key

# an EC2 instance id, or a local executor's (local-N) on the local cloud
_INSTANCE_ID = re.compile(r"(i-[0-9a-f]{8,17}|local-[0-9]{1,6})")


@dataclass(frozen=True)
class BootStep:
    name: str
    state: str
    detail: str = ""
    seconds: int | None = None


@dataclass(frozen=True)
class Host:
    instance_id: str
    in_group: bool  # still one of the group's instances (a record alone means it is gone)
    lifecycle: str = ""  # InService, Pending, Terminating... ("" when gone)
    ami: str = ""
    instance_type: str = ""
    boot_state: str = "unknown"  # booting | ok | failed | unknown (no record yet)
    failed_step: str = ""
    reason: str = ""
    engine: str = ""
    python: str = ""
    torch: str = ""
    steps: list[BootStep] = field(default_factory=list)
    heartbeat: str | None = None  # the executor's last heartbeat (UTC, ISO 8601)
    job_id: str | None = None
    pid: int | None = None  # the executor's process (a local cloud's executor: the one to look for here)

    @property
    def local(self) -> bool:
        """One of the local cloud's executors (local-N), not an instance."""
        return is_local_executor(self.instance_id)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "local": self.local}


@dataclass(frozen=True)
class Fleet:
    group: str
    min_size: int
    max_size: int
    desired: int
    stack_min: int
    stack_max: int
    hosts: list[Host]

    @property
    def stopped_by(self) -> Host | None:
        """The failed host that stopped the group, while the group is stopped."""
        if self.max_size != 0 or self.stack_max == 0:
            return None
        failed = [h for h in self.hosts if h.boot_state == "failed"]
        return failed[-1] if failed else None

    def to_dict(self) -> dict[str, Any]:
        stopped = self.stopped_by
        return {
            "group": self.group, "min_size": self.min_size, "max_size": self.max_size, "desired": self.desired,
            "stopped_after_failed_boot": stopped.instance_id if stopped else None,
            "hosts": [h.to_dict() for h in self.hosts],
        }  # fmt: skip


class FleetHosts:
    def __init__(self, stacks: Stacks, clients: Any) -> None:
        self.stacks = stacks
        self.clients = clients

    def _deployed(self) -> tuple[str, str, dict[str, str]]:
        fleet = self.stacks.describe("fleet")
        if not fleet.deployed:
            raise NotFoundError("the fleet stack is not deployed: skydeck stacks deploy fleet")
        infra = self.stacks.describe("infra")
        return fleet.outputs["AutoScalingGroup"], infra.outputs["Bucket"], fleet.parameters

    def list(self) -> Fleet:
        group_name, bucket, params = self._deployed()
        autoscaling, ec2, s3 = (self.clients.client(n) for n in ("autoscaling", "ec2", "s3"))
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
        if not groups:
            raise NotFoundError(f"the fleet's group {group_name} is gone; redeploy it: skydeck stacks deploy fleet")
        group = groups[0]
        members = {i["InstanceId"]: i for i in group.get("Instances", [])}
        described: dict[str, dict[str, Any]] = {}
        if members:
            for reservation in ec2.describe_instances(InstanceIds=sorted(members))["Reservations"]:
                for inst in reservation["Instances"]:
                    described[inst["InstanceId"]] = inst
        recorded = self._recorded_ids(s3, bucket)
        hosts = [
            self._host(s3, bucket, iid, members.get(iid), described.get(iid))
            for iid in sorted(set(members) | recorded, key=lambda i: (i not in members, i))
        ]
        return Fleet(
            group=group_name, min_size=group["MinSize"], max_size=group["MaxSize"],
            desired=group["DesiredCapacity"], stack_min=int(params.get("MinSize", 0)),
            stack_max=int(params.get("MaxSize", 4)), hosts=hosts,
        )  # fmt: skip

    def boot_log(self, instance_id: str) -> str:
        if not _INSTANCE_ID.fullmatch(instance_id):
            raise ConfigError(
                f"{shown(instance_id, limit=80)!r} is not an instance id (i-0123456789abcdef0): "
                "list the hosts with: skydeck fleet hosts"
            )
        _, bucket, _ = self._deployed()
        text = _read(self.clients.client("s3"), bucket, f"{HOSTS_PREFIX}{instance_id}/boot.log")
        if text is None:
            raise NotFoundError(
                f"no boot log for {instance_id} in s3://{bucket}/{HOSTS_PREFIX}: "
                "list the hosts with: skydeck fleet hosts"
            )
        return text

    def resume(self) -> Fleet:
        """Give the group back the sizes its stack says, after a failed boot stopped it."""
        fleet = self.list()
        if fleet.stack_max == 0:
            raise SkydeckError("the fleet stack's MaxSize is 0: redeploy with --param MaxSize=N")
        self.clients.client("autoscaling").update_auto_scaling_group(
            AutoScalingGroupName=fleet.group, MinSize=fleet.stack_min, MaxSize=fleet.stack_max
        )
        return self.list()

    @staticmethod
    def _recorded_ids(s3: Any, bucket: str) -> set[str]:
        found: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=HOSTS_PREFIX, Delimiter="/"):
            for prefix in page.get("CommonPrefixes", []):
                found.add(prefix["Prefix"][len(HOSTS_PREFIX) :].strip("/"))
        return found

    @staticmethod
    def _host(s3: Any, bucket: str, iid: str, member: dict[str, Any] | None, described: dict[str, Any] | None) -> Host:
        problems: list[str] = []
        boot = _json(_read(s3, bucket, f"{HOSTS_PREFIX}{iid}/boot.json"), problems)
        beacon = _Record(_json(_read(s3, bucket, beacon_key(iid)), []), [])  # information: never malformed
        tags = {t["Key"]: t["Value"] for t in (described or {}).get("Tags", [])}
        record = _Record(boot, problems)
        steps = _steps(boot.get("steps"), problems)
        # a local cloud's executor boots nothing
        state = record.text("state") or tags.get("skydeck:boot") or ("-" if is_local_executor(iid) else "unknown")
        failed_step = record.text("step") if state == "failed" else ""
        if state == "failed" and not failed_step:
            failed_step = tags.get("skydeck:boot-step", "")
        reason = record.text("reason")
        if problems:
            # a record that does not read is shown as such, with what is wrong; the rest of the list still shows
            state, reason = "malformed", f"{HOSTS_PREFIX}{iid}/boot.json: {'; '.join(problems)}"
        return Host(
            instance_id=iid,
            in_group=member is not None,
            lifecycle=(member or {}).get("LifecycleState", ""),
            ami=(described or {}).get("ImageId") or record.text("ami"),
            instance_type=(described or {}).get("InstanceType") or record.text("instance_type"),
            boot_state=state,
            failed_step=failed_step,
            reason=reason,
            engine=record.text("engine") or beacon.text("engine"),
            python=record.text("python"),
            torch=record.text("torch"),
            steps=steps,
            heartbeat=beacon.text("time") or None,
            job_id=beacon.text("job_id") or None,
            pid=_whole(beacon.doc.get("pid")),
        )


def _read(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
    except s3.exceptions.NoSuchKey:
        return None


def _json(text: str | None, problems: list[str]) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        problems.append("not JSON")
        return {}
    if not isinstance(value, dict):
        problems.append("not a JSON object")
        return {}
    return value


@dataclass(frozen=True)
class _Record:
    """A host's record, read field by field: a value of the wrong type is a problem named, not a crash."""

    doc: dict[str, Any]
    problems: list[str]

    def text(self, key: str) -> str:
        value = self.doc.get(key)
        if value is None or isinstance(value, str):
            return value or ""
        self.problems.append(f"{key} is {json.dumps(value)[:40]}, not text")
        return ""


def _steps(raw: Any, problems: list[str]) -> list[BootStep]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append("steps is not a list")
        return []
    steps: list[BootStep] = []
    for i, step in enumerate(raw):
        if not isinstance(step, dict) or not all(isinstance(step.get(k), str) for k in ("name", "state")):
            problems.append(f"steps[{i}] needs a name and a state")
            continue
        detail = step.get("detail")
        steps.append(
            BootStep(
                step["name"], step["state"], detail if isinstance(detail, str) else "", _whole(step.get("seconds"))
            )
        )
    return steps


def _whole(value: Any) -> int | None:
    """A JSON whole number, or None (true and false are not numbers here)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_local_executor(instance_id: str) -> bool:
    """A local cloud's executor (local-N), which boots nothing, not an EC2 instance."""
    return instance_id.startswith("local-")
