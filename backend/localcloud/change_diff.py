"""Which resources an update changes, worked out from the two templates and their parameters.

moto compares a change set's resources as raw JSON and ignores parameters, so `--param MaxSize=6`
showed an unrelated resource as modified, and nothing it did change. Here each resource is rendered
as CloudFormation would see it - parameters substituted into `Ref` and `Fn::Sub`, `Fn::If` and
resource conditions evaluated - and compared: Add, Remove, Modify. A resource that reads an attribute
(`Fn::GetAtt`) of a modified one is modified too, as the attribute may change with it (a launch
template's version number, say): CloudFormation shows those as well.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SUB_REF = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


class _Unknown:
    """A value the diff cannot evaluate (a resource's attribute, a pseudo parameter)."""


def parameter_values(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    declared = template.get("Parameters") or {}
    values = {name: (body or {}).get("Default") for name, body in declared.items()}
    values.update({k: v for k, v in given.items() if k in declared})
    return {
        k: ("" if v is None else str(v) if not isinstance(v, list) else ",".join(map(str, v)))
        for k, v in values.items()
    }


def _conditions(template: dict[str, Any], params: dict[str, Any]) -> dict[str, bool]:
    raw = template.get("Conditions") or {}
    done: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return params.get(arg, _Unknown())
            if key == "Condition":
                return condition(arg)
            if key == "Fn::Equals":
                a, b = (value(x) for x in arg)
                return None if isinstance(a, _Unknown) or isinstance(b, _Unknown) else str(a) == str(b)
            if key == "Fn::Not":
                inner = value(arg[0])
                return None if inner is None else not inner
            if key in ("Fn::And", "Fn::Or"):
                parts = [value(x) for x in arg]
                if None in parts:
                    return None
                return all(parts) if key == "Fn::And" else any(parts)
            return _Unknown()
        return node

    def condition(name: str) -> bool | None:
        if name not in done:
            result = value(raw.get(name))
            done[name] = result if isinstance(result, bool) else True  # unknown: assume the resource exists
        return done[name]

    for name in raw:
        condition(name)
    return done


def _render(node: Any, params: dict[str, Any], conditions: dict[str, bool]) -> Any:
    if isinstance(node, list):
        return [_render(x, params, conditions) for x in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref" and isinstance(arg, str) and arg in params:
            return params[arg]
        if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
            chosen = arg[1] if conditions.get(arg[0], True) else arg[2]
            return _render(chosen, params, conditions)
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            if isinstance(text, str):
                rendered = _SUB_REF.sub(lambda m: str(params[m[1]]) if m[1] in params else m[0], text)
                return {"Fn::Sub": rendered if not extra else [rendered, _render(extra, params, conditions)]}
    return {k: _render(v, params, conditions) for k, v in node.items()}


def _attributes_read(node: Any) -> set[str]:
    """Logical ids whose attributes this resource reads (Fn::GetAtt, or ${X.Attr} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for x in node:
            found |= _attributes_read(x)
    elif isinstance(node, dict):
        for key, arg in node.items():
            if key == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0] if isinstance(arg, list) else ""
                found |= {m.split(".", 1)[0] for m in _SUB_REF.findall(str(text)) if "." in m}
                found |= _attributes_read(arg)
            else:
                found |= _attributes_read(arg)
    return found


def _rendered(template: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    conditions = _conditions(template, params)
    out = {}
    for name, body in (template.get("Resources") or {}).items():
        body = body or {}
        if body.get("Condition") and not conditions.get(body["Condition"], True):
            continue
        out[name] = {k: _render(v, params, conditions) for k, v in body.items() if k not in ("Condition", "Metadata")}
    return out


def resource_changes(
    old_template: dict[str, Any], old_params: dict[str, Any], new_template: dict[str, Any], new_params: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """(action, logical id, resource type) for each resource the update adds, modifies or removes."""
    old = _rendered(old_template, parameter_values(old_template, old_params))
    new = _rendered(new_template, parameter_values(new_template, new_params))
    modified = {n for n in new if n in old and json.dumps(new[n], sort_keys=True) != json.dumps(old[n], sort_keys=True)}
    grew = True
    while grew:  # what reads an attribute of a modified resource may change with it
        more = {n for n in new if n in old and n not in modified and _attributes_read(new[n]) & modified}
        modified |= more
        grew = bool(more)
    changes = [("Add", n, new[n].get("Type", "")) for n in new if n not in old]
    changes += [("Modify", n, new[n].get("Type", "")) for n in new if n in modified]
    changes += [("Remove", n, old[n].get("Type", "")) for n in old if n not in new]
    return changes
