"""Bring moto's CloudFormation change sets closer to AWS, inside the local cloud's process.

moto applies a change set but leaves the stack's outputs and parameters as they were, records only
stack-level events, and leaves a stack IN_PROGRESS forever when a resource fails. Here executing a
change set refreshes outputs and parameters, records an event per resource, and turns a failure
into a FAILED resource event and a ROLLBACK_COMPLETE (or UPDATE_ROLLBACK_COMPLETE) stack, as AWS does.
"""

from __future__ import annotations

import re
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Event, Stack

from backend.localcloud.change_diff import resource_changes

_ORIGINAL: dict[str, Any] = {}


def _resource_event(
    stack: Stack, logical_id: str, rtype: str, status: str, reason: str = "", physical: str = ""
) -> None:
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical,
            resource_type=rtype,
            resource_status=status,
            resource_status_reason=reason or None,
            resource_properties=None,
        )
    )


def _install_function_layers() -> None:
    """moto's CloudFormation creates a function without its Layers and EphemeralStorage (an update
    applies both); the local Lambda runtime needs them, as a handler sees only its layers."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]  # moto's class, patched in place

    def create(cls: type[LambdaFunction], resource_name: str, cloudformation_json: dict[str, Any],
               account_id: str, region_name: str, **kwargs: Any) -> LambdaFunction:  # fmt: skip
        fn = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json.get("Properties", {})
        if props.get("Layers"):
            fn.layers = fn._get_layers_data(props["Layers"])
        size = (props.get("EphemeralStorage") or {}).get("Size")
        if size:
            fn.ephemeral_storage = int(size)
        return fn

    LambdaFunction.create_from_cloudformation_json = classmethod(create)  # type: ignore[assignment,method-assign]  # moto's class, patched in place


_SSM_REFERENCE = re.compile(r"\{\{resolve:ssm:([A-Za-z0-9_./-]+)(?::(\d+))?\}\}")


def _install_dynamic_references() -> None:
    """moto leaves `{{resolve:ssm:NAME}}` in a property as it is; CloudFormation reads the parameter
    there, after the intrinsic functions, so a reference in an If branch not taken is never read."""
    from moto.cloudformation import parsing
    from moto.ssm.models import ssm_backends

    original = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        value = original(resource_json, resources_map)
        if not isinstance(value, str) or "{{resolve:ssm:" not in value:
            return value

        def read(match: re.Match[str]) -> str:
            backend = ssm_backends[resources_map._account_id][resources_map._region_name]
            parameter = backend.get_parameter(match.group(1))
            if parameter is None:
                raise cfn_models.ValidationError(
                    message=f"Unable to fetch parameters [{match.group(1)}] from parameter store for this account."
                )
            return str(parameter.value)

        return _SSM_REFERENCE.sub(read, value)

    parsing.clean_json = clean_json


def install() -> None:
    if _ORIGINAL:
        return
    _install_function_layers()
    _install_dynamic_references()
    _ORIGINAL["execute"] = CloudFormationBackend.execute_change_set

    def execute_change_set(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
        change_set: ChangeSet | None = self.change_sets.get(change_set_name)
        if change_set is None:
            for cs in self.change_sets.values():
                if cs.change_set_name == change_set_name and (stack_name in (None, cs.stack_name, cs.stack_id)):
                    change_set = cs
        if change_set is None:
            raise cfn_models.ValidationError(stack_name)
        stack: Stack = self.stacks[change_set.stack_id]
        creating = change_set.change_set_type == "CREATE"
        verb = "CREATE" if creating else "UPDATE"
        stack._add_stack_event(f"{verb}_IN_PROGRESS", resource_status_reason="User Initiated")
        resources = change_set.template_dict.get("Resources") or {}
        if not creating:  # an update reports the resources it changes, as AWS does, not every one
            changing = {c.logical_resource_id for c in change_set.changes}
            resources = {k: v for k, v in resources.items() if k in changing}
        for logical_id, body in resources.items():
            _resource_event(stack, logical_id, body.get("Type", ""), f"{verb}_IN_PROGRESS")
        try:
            change_set.apply()
            stack.template = change_set.template
            stack._parse_template()
            stack.parameters = change_set.parameters
            stack.output_map = stack._create_output_map()
            _ = stack.outputs  # resolve now so a bad output fails here, not on describe
        except Exception as exc:  # noqa: BLE001 - any resource failure rolls the stack back
            failed = getattr(exc, "logical_id", None) or _guess_failed(stack, resources)
            _resource_event(
                stack,
                failed,
                resources.get(failed, {}).get("Type", ""),
                f"{verb}_FAILED",
                f"{type(exc).__name__}: {exc}",
            )
            stack._add_stack_event(
                f"{'ROLLBACK' if creating else 'UPDATE_ROLLBACK'}_IN_PROGRESS",
                resource_status_reason=f"The following resource(s) failed: [{failed}]",
            )
            stack.status = "ROLLBACK_COMPLETE" if creating else "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(stack.status)
            change_set.execution_status = "EXECUTE_FAILED"
            return
        for logical_id, body in resources.items():
            physical = ""
            try:
                res = stack.resource_map[logical_id]
                physical = getattr(res, "physical_resource_id", "") or ""
            except Exception:  # noqa: BLE001 - unsupported types have no model; the event still counts
                pass
            _resource_event(stack, logical_id, body.get("Type", ""), f"{verb}_COMPLETE", physical=str(physical))
        stack._add_stack_event(f"{verb}_COMPLETE")
        stack.status = f"{verb}_COMPLETE"
        change_set.execution_status = "EXECUTE_COMPLETE"

    CloudFormationBackend.execute_change_set = execute_change_set  # type: ignore[method-assign]  # moto's class, patched in place
    _install_vpc_teardown()
    _install_change_diff()


def _install_change_diff() -> None:
    """An update's change set lists what the two templates and their parameters really change
    (backend.localcloud.change_diff), where moto compared raw JSON and ignored parameters."""
    original = ChangeSet.diff

    def diff(self: ChangeSet) -> list[Any]:
        if self.change_set_type != "UPDATE" or not getattr(self.stack, "template_dict", None):
            return original(self)
        changes = resource_changes(
            self.stack.template_dict, dict(self.stack.parameters or {}), self.template_dict, dict(self.parameters or {})
        )
        return [cfn_models.Change(action=a, logical_resource_id=n, resource_type=t) for a, n, t in changes]

    ChangeSet.diff = diff  # type: ignore[method-assign]  # moto's class, patched in place


def _install_vpc_teardown() -> None:
    """moto cannot delete a VPCGatewayAttachment or a RouteTable made by a template, so the VPC they
    hold is never deleted and a stack with its own VPC (the fleet) fails to delete. Here they are
    removed as AWS removes them: the gateway detached, the route table deleted."""
    from moto.cloudformation.parsing import ResourceMap
    from moto.ec2.models import ec2_backends

    original = ResourceMap._delete_resource

    def delete_resource(self: ResourceMap, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        kind = resource_json.get("Type")
        ec2 = ec2_backends[self._account_id][self._region_name]
        if kind == "AWS::EC2::VPCGatewayAttachment" and getattr(parsed_resource, "gateway_id", None):
            ec2.detach_internet_gateway(parsed_resource.gateway_id, parsed_resource.vpc_id)
            return
        if kind == "AWS::EC2::RouteTable" and getattr(parsed_resource, "id", None):
            ec2.delete_route_table(parsed_resource.id)
            return
        original(self, parsed_resource, resource_json)

    ResourceMap._delete_resource = delete_resource  # type: ignore[method-assign]  # moto's class, patched in place


def _guess_failed(stack: Stack, resources: dict[str, Any]) -> str:
    parsed = getattr(stack.resource_map, "_parsed_resources", {})
    for logical_id in resources:
        if logical_id not in parsed:
            return logical_id
    return next(iter(resources), stack.name)
