"""Deploy, describe and delete skydeck's CloudFormation stacks, streaming their events.

Deploys go through change sets (create or update), events stream oldest-first without repeats,
"no changes" counts as success, and any ROLLBACK or FAILED status is a failure that names the
resources and reasons. Stack outputs are the only source of resource names; the parameters a stack
needs from another (bucket, queue, table, packaged code) are read from those outputs here.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from backend.core.aws import Clients
from backend.core.errors import ConfigError, NotFoundError, SkydeckError
from backend.core.paths import stacks_dir
from backend.stacks.packaging import executor_package, lambda_package, upload

POLL_S = 0.5
TIMEOUT_S = 3600.0


class StackFailed(SkydeckError):
    def __init__(self, message: str, failures: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


@dataclass(frozen=True)
class StackEvent:
    timestamp: float
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class StackInfo:
    short: str
    name: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def deployed(self) -> bool:
        return self.status not in ("NOT_DEPLOYED", "DELETE_COMPLETE")

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.short,
            "name": self.name,
            "status": self.status,
            "outputs": self.outputs,
            "parameters": self.parameters,
            "reason": self.reason,
        }


def outcome(status: str) -> str:
    """Reduce a CloudFormation status to complete / in_progress / failed."""
    if status.endswith("_IN_PROGRESS"):
        return "in_progress"
    if "ROLLBACK" in status or status.endswith("_FAILED"):
        return "failed"
    return "complete"


EventSink = Callable[[StackEvent], None]


@dataclass(frozen=True)
class Change:
    """One resource a change set adds, modifies or removes."""

    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" (not a modification)

    def to_dict(self) -> dict[str, str]:
        return {
            "action": self.action,
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "replacement": self.replacement,
        }


@dataclass(frozen=True)
class Plan:
    """A created change set, ready to run (`change_set` is None when there is nothing to change)."""

    short: str
    name: str
    change_type: str  # CREATE | UPDATE
    change_set: str | None
    changes: list[Change]


def _change(raw: dict[str, Any]) -> Change:
    return Change(
        str(raw.get("Action", "")),
        str(raw.get("LogicalResourceId", "")),
        str(raw.get("ResourceType", "")),
        str(raw.get("Replacement", "")),
    )


@dataclass(frozen=True)
class StackDef:
    short: str
    needs: tuple[str, ...]
    describe: str

    @property
    def template_path(self) -> Any:
        return stacks_dir() / f"{self.short}.yaml"

    def template_body(self) -> str:
        return self.template_path.read_text()

    def parameter_names(self) -> set[str]:
        return set((_load_template(self.template_body()).get("Parameters") or {}).keys())


STACKS: dict[str, StackDef] = {
    "infra": StackDef("infra", (), "data bucket, jobs queue + dead-letter queue, jobs table"),
    "api": StackDef("api", ("infra",), "API Gateway + jobs Lambda"),
    "fleet": StackDef("fleet", ("infra",), "GPU Auto Scaling group running the executor"),
    "sdsinf": StackDef("sdsinf", ("infra",), "SDS-Inf buckets and the Serial function"),
}
ORDER = ("infra", "api", "fleet", "sdsinf")


def _load_template(body: str) -> dict[str, Any]:
    import yaml  # only deploying and checking read templates; a command reading outputs does not pay for it

    class _Loader(yaml.SafeLoader):
        pass

    def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)  # type: ignore[arg-type]  # yaml's stub wants a MappingNode; the tag handler gets one

    _Loader.add_multi_constructor("!", _tag)
    return yaml.load(body, Loader=_Loader)  # noqa: S506 - SafeLoader subclass with CFN tags


def stack_def(short: str) -> StackDef:
    if short not in STACKS:
        raise NotFoundError(f"no stack named {short!r}; skydeck's stacks are: {', '.join(ORDER)}")
    return STACKS[short]


class Stacks:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.cfn = clients.client("cloudformation")

    # -- reads ---------------------------------------------------------------------------------
    def describe(self, short: str) -> StackInfo:
        stack_def(short)
        name = self.clients.profile.stack_name(short)
        try:
            stack = self.cfn.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return StackInfo(short, name, "NOT_DEPLOYED")
            raise
        return StackInfo(
            short=short,
            name=name,
            status=stack["StackStatus"],
            outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
            parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
            reason=stack.get("StackStatusReason", ""),
        )

    def list(self) -> list[StackInfo]:
        return [self.describe(s) for s in ORDER]

    def outputs(self, short: str) -> dict[str, str]:
        info = self.describe(short)
        if not info.deployed or outcome(info.status) == "failed":
            raise NotFoundError(f"stack {short} is {info.status}; deploy it first: skydeck stacks deploy {short}")
        return info.outputs

    def wait_outputs(self, short: str, on_wait: Callable[[str], None], poll_s: float = 2.0) -> dict[str, str]:
        """The stack's outputs once it is deployed; `on_wait(why)` is called once if it is not yet."""
        told = False
        while True:
            try:
                return self.outputs(short)
            except NotFoundError as exc:
                if not told:
                    on_wait(str(exc).split(";")[0])
                    told = True
            time.sleep(poll_s)

    def events(self, short: str) -> builtins.list[StackEvent]:
        name = self.clients.profile.stack_name(short)
        try:
            raw = self.cfn.describe_stack_events(StackName=name)["StackEvents"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                raise NotFoundError(f"stack {short} is not deployed") from None
            raise
        events = [_event(e) for e in raw]
        events.sort(key=lambda e: e.timestamp)
        return events

    # -- deploy --------------------------------------------------------------------------------
    def derived_parameters(self, short: str) -> dict[str, str]:
        """Parameters read from other stacks' outputs and from packaging the code."""
        if short == "infra":
            return {}
        infra = self.outputs("infra")
        s3 = self.clients.client("s3")
        common = {k: infra[k] for k in ("QueueUrl", "QueueArn", "TableName", "TableArn")}
        if short in ("api", "sdsinf"):
            code = {"CodeBucket": infra["Bucket"], "CodeKey": upload(s3, infra["Bucket"], lambda_package())}
            return code if short == "sdsinf" else {**common, **code}
        return {
            **common,
            "Bucket": infra["Bucket"],
            "BucketArn": infra["BucketArn"],
            "QueueName": infra["QueueName"],
            "ExecutorKey": upload(s3, infra["Bucket"], executor_package()),
        }

    def deploy(
        self,
        short: str,
        params: dict[str, str] | None = None,
        on_event: EventSink | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> StackInfo:
        """Plan and execute at once (what the console and scripts want)."""
        return self.execute(self.plan(short, params, on_event), on_event, timeout_s)

    def plan(self, short: str, params: dict[str, str] | None = None, on_event: EventSink | None = None) -> Plan:
        """A change set for the stack as its template and parameters now say, created but not run."""
        sdef = stack_def(short)
        allowed = sdef.parameter_names()
        user = {**self.clients.profile.params.get(short, {}), **(params or {})}
        for key in user:
            if key not in allowed:
                raise ConfigError(
                    f"--param {key}: stack {short} has no such parameter; it takes: {', '.join(sorted(allowed))}"
                )
        merged = {**self.derived_parameters(short), **user}
        if short == "sdsinf" and not merged.get("NumpyLayerArn"):
            merged["NumpyLayerArn"] = (
                self.local_numpy_layer() if self.clients.profile.is_local else self.numpy_layer(on_event)
            )
        name = self.clients.profile.stack_name(short)
        current = self.describe(short)
        if current.status == "ROLLBACK_COMPLETE":
            raise StackFailed(
                f"stack {name} failed its first create and must be deleted first: skydeck stacks delete {short}"
            )
        reviewing = current.status == "REVIEW_IN_PROGRESS"  # created by a change set never run
        if outcome(current.status) == "in_progress" and not reviewing:
            raise StackFailed(
                f"stack {name} is busy ({current.status}); wait for it: skydeck stacks events {short} --follow"
            )
        if reviewing:
            # nothing was ever created: start from a clean slate rather than stack a second change set
            self.cfn.delete_stack(StackName=name)
            deadline = time.time() + 60
            while self.describe(short).deployed and time.time() < deadline:
                time.sleep(POLL_S)
        change_type = "UPDATE" if current.deployed and not reviewing else "CREATE"
        change_set = f"skydeck-{time.strftime('%Y%m%d%H%M%S')}-{int(time.time() * 1000) % 1000:03d}"
        try:
            self.cfn.create_change_set(
                StackName=name,
                ChangeSetName=change_set,
                ChangeSetType=change_type,
                TemplateBody=sdef.template_body(),
                Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in sorted(merged.items())],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
                Tags=[{"Key": "skydeck:stack", "Value": short}],
            )
        except ClientError as exc:
            raise StackFailed(f"CloudFormation refused the change set for {name}: {exc}") from None
        if not self._wait_change_set(name, change_set):
            return Plan(short, name, change_type, None, [])  # no changes: nothing to do
        described = self.cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
        changes = [_change(c.get("ResourceChange") or {}) for c in described.get("Changes", [])]
        return Plan(short, name, change_type, change_set, changes)

    def execute(self, plan: Plan, on_event: EventSink | None = None, timeout_s: float = TIMEOUT_S) -> StackInfo:
        """Run a plan's change set and follow the stack until it settles."""
        if plan.change_set is None:
            return self.describe(plan.short)
        since = time.time() - 1
        self.cfn.execute_change_set(StackName=plan.name, ChangeSetName=plan.change_set)
        info = self._follow(plan.short, since, on_event, timeout_s)
        if self.clients.profile.is_local:
            self._apply_event_invoke_configs(stack_def(plan.short), plan.name)
        return info

    def numpy_layer(self, on_event: EventSink | None = None) -> str:
        """Build (or reuse) the numpy/scipy layer and publish it; the SDS-Inf functions need it on AWS."""
        from backend.stacks.lambda_layers import build_layer, publish_layer

        zip_path = build_layer(self.clients.home.cache_dir / "layers")
        bucket = self.outputs("infra")["Bucket"]
        name = self.clients.profile.stack_name("sdsinf") + "-numpy-scipy"
        return publish_layer(self.clients.client("lambda"), self.clients.client("s3"), bucket, name, zip_path)

    def local_numpy_layer(self) -> str:
        """The local cloud's numpy/scipy layer: a manifest of the AWS layer's pins, which the local Lambda
        runtime fills from this installation (a handler sees numpy only through a layer, as on AWS)."""
        import base64
        import hashlib

        from backend.localcloud.lambda_sandbox import local_layer_zip
        from backend.stacks.lambda_layers import PACKAGES, RUNTIME

        client = self.clients.client("lambda")
        name = self.clients.profile.stack_name("sdsinf") + "-numpy-scipy"
        content = local_layer_zip(PACKAGES)
        sha = base64.b64encode(hashlib.sha256(content).digest()).decode()
        versions = client.list_layer_versions(LayerName=name).get("LayerVersions", [])
        for version in sorted(versions, key=lambda v: -int(v["Version"]))[:1]:
            # the same manifest as the newest version: reuse it, so a redeploy changes nothing
            found = client.get_layer_version(LayerName=name, VersionNumber=int(version["Version"]))
            if found.get("Content", {}).get("CodeSha256") == sha:
                return str(version["LayerVersionArn"])
        resp = client.publish_layer_version(
            LayerName=name,
            Description="numpy and scipy for skydeck's SDS-Inf functions (local: this installation's, same pins)",
            Content={"ZipFile": content},
            CompatibleRuntimes=[RUNTIME],
        )
        return str(resp["LayerVersionArn"])

    def _apply_event_invoke_configs(self, sdef: StackDef, name: str) -> None:
        """moto's CloudFormation skips AWS::Lambda::EventInvokeConfig; apply those settings directly
        so the local Lambda runtime honours the same event age and retry count as AWS would."""
        resources = _load_template(sdef.template_body()).get("Resources") or {}
        lam = self.clients.client("lambda")
        for body in resources.values():
            if body.get("Type") != "AWS::Lambda::EventInvokeConfig":
                continue
            props = body.get("Properties") or {}
            # skydeck's templates name functions "${AWS::StackName}-..." (moto cannot describe stack
            # resources once a template holds a type it skips, so the name is read from the template)
            named = (resources.get(props.get("FunctionName"), {}).get("Properties") or {}).get("FunctionName")
            if not isinstance(named, str):
                continue
            function = named.replace("${AWS::StackName}", name)
            lam.put_function_event_invoke_config(
                FunctionName=function,
                MaximumEventAgeInSeconds=int(props.get("MaximumEventAgeInSeconds", 21600)),
                MaximumRetryAttempts=int(props.get("MaximumRetryAttempts", 2)),
            )

    def _wait_change_set(self, name: str, change_set: str) -> bool:
        deadline = time.time() + 300
        while time.time() < deadline:
            cs = self.cfn.describe_change_set(StackName=name, ChangeSetName=change_set)
            status = cs.get("Status", "")
            if status == "CREATE_COMPLETE":
                return True
            if status == "FAILED":
                reason = cs.get("StatusReason", "")
                if "didn't contain changes" in reason or "No updates" in reason:
                    self.cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
                    return False
                raise StackFailed(f"change set for {name} failed: {reason}")
            time.sleep(POLL_S)
        raise StackFailed(f"change set for {name} was not ready after 300s")

    def _follow(self, short: str, since: float, on_event: EventSink | None, timeout_s: float) -> StackInfo:
        seen: set[str] = set()
        deadline = time.time() + timeout_s
        name = self.clients.profile.stack_name(short)
        while True:
            failures = self._emit_new(name, since, seen, on_event)
            info = self.describe(short)
            state = outcome(info.status)
            if state != "in_progress" and info.status != "REVIEW_IN_PROGRESS":
                failures += self._emit_new(name, since, seen, on_event)
                if state == "failed":
                    detail = (
                        "; ".join(f"{f['logical_id']}: {f['reason']}" for f in failures if f["reason"]) or info.reason
                    )
                    raise StackFailed(f"stack {name} ended {info.status}: {detail or 'see its events'}", failures)
                return info
            if time.time() > deadline:
                raise StackFailed(
                    f"stack {name} still {info.status} after {timeout_s:.0f}s; "
                    f"follow it: skydeck stacks events {short} --follow"
                )
            time.sleep(POLL_S)

    def _emit_new(
        self, name: str, since: float, seen: set[str], on_event: EventSink | None
    ) -> builtins.list[dict[str, Any]]:
        failures: list[dict[str, Any]] = []
        try:
            raw = self.cfn.describe_stack_events(StackName=name)["StackEvents"]
        except ClientError:
            return failures
        fresh = [e for e in raw if e["EventId"] not in seen and e["Timestamp"].timestamp() >= since]
        fresh.sort(key=lambda e: e["Timestamp"])
        for e in fresh:
            seen.add(e["EventId"])
            event = _event(e)
            if event.status.endswith("_FAILED"):
                failures.append(event.to_dict())
            if on_event:
                on_event(event)
        return failures

    # -- delete --------------------------------------------------------------------------------
    def dependents(self, short: str) -> builtins.list[str]:
        return [s for s, d in STACKS.items() if short in d.needs and self.describe(s).deployed]

    def delete(self, short: str, on_event: EventSink | None = None, timeout_s: float = TIMEOUT_S) -> StackInfo:
        stack_def(short)
        blocking = self.dependents(short)
        if blocking:
            raise StackFailed(f"stack {short} is used by {', '.join(blocking)}; delete those first")
        info = self.describe(short)
        if not info.deployed:
            raise NotFoundError(f"stack {short} is not deployed; nothing to delete")
        since = time.time() - 1
        self.cfn.delete_stack(StackName=info.name)
        seen: set[str] = set()
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            self._emit_new(info.name, since, seen, on_event)
            now = self.describe(short)
            if not now.deployed:
                return StackInfo(short, info.name, "DELETE_COMPLETE")
            if now.status == "DELETE_FAILED":
                raise StackFailed(f"stack {info.name} could not be deleted: {now.reason}")
            time.sleep(POLL_S)
        raise StackFailed(f"stack {info.name} still deleting after {timeout_s:.0f}s")


def _event(e: dict[str, Any]) -> StackEvent:
    return StackEvent(
        timestamp=e["Timestamp"].timestamp(),
        logical_id=e.get("LogicalResourceId", ""),
        resource_type=e.get("ResourceType", ""),
        status=e.get("ResourceStatus", ""),
        reason=e.get("ResourceStatusReason", "") or "",
    )
