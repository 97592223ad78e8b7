"""The data a review produces (ReviewReport and its parts) and template value helpers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.review.tables import STATEFUL_TYPES

IGNORED_TYPES = frozenset({"AWS::CDK::Metadata"})


class AssemblyError(ValueError):
    """A folder is not a readable cloud assembly (the CLI prints it as one ERROR line)."""


# ---------------------------------------------------------------- data model


@dataclass(frozen=True)
class StackTemplate:
    key: str  # hierarchical display path, e.g. "dev-us-east-1/Serving"
    artifact_id: str
    stack_name: str
    template_file: Path
    template: dict[str, Any]


@dataclass(frozen=True)
class ResourceChange:
    stack: str
    logical_id: str
    resource_type: str
    kind: str  # added | removed | modified | replaced
    properties: tuple[str, ...] = ()  # changed properties (top level, or replacing paths)
    replacing: tuple[str, ...] = ()  # the properties that force the replacement
    failing: tuple[str, ...] = ()  # immutable properties: the update fails
    note: str = ""
    construct_path: str = ""
    retained: bool = False  # DeletionPolicy Retain on the old resource

    @property
    def stateful(self) -> bool:
        return self.resource_type in STATEFUL_TYPES


@dataclass(frozen=True)
class IamChange:
    stack: str
    logical_id: str
    resource_type: str
    policy: str  # which document: PolicyDocument, Policies[name], trust policy, ...
    sign: str  # "+" added, "-" removed
    effect: str
    principal: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: str = ""
    broadened: tuple[str, ...] = ()  # why the addition widens access

    def describe(self) -> str:
        text = f"{self.effect} {', '.join(self.actions)} on {', '.join(self.resources)}"
        if self.principal:
            text += f" to {self.principal}"
        if self.condition:
            text += f" when {self.condition}"
        return text


@dataclass(frozen=True)
class SecurityGroupChange:
    stack: str
    group: str
    direction: str  # ingress | egress
    sign: str
    rule: str
    open_to_world: bool = False


@dataclass(frozen=True)
class ModelChange:
    environment: str
    base: str | None  # "version 3 (arn...)" or None when nothing was served
    head: str | None
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndpointUpdate:
    stack: str
    logical_id: str
    endpoint_name: str
    reason: str
    environment: str | None = None


@dataclass(frozen=True)
class Finding:
    plugin: str
    rule: str
    resource: str
    description: str = ""
    severity: str = ""
    reason: str = ""  # acknowledgment reason, for suppressed findings

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plugin, self.rule, self.resource)


@dataclass
class StackDiff:
    key: str
    stack_name: str
    status: str  # added | removed | changed
    changes: list[ResourceChange] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)  # "Outputs: +X, ~Y"
    full_diff: str | None = None
    base_template: Path | None = None
    head_template: Path | None = None


@dataclass
class ReviewReport:
    base_label: str = "base"
    head_label: str = "head"
    stacks: list[StackDiff] = field(default_factory=list)
    iam: list[IamChange] = field(default_factory=list)
    security_groups: list[SecurityGroupChange] = field(default_factory=list)
    models: list[ModelChange] = field(default_factory=list)
    endpoint_updates: list[EndpointUpdate] = field(default_factory=list)
    new_findings: list[Finding] = field(default_factory=list)
    resolved_findings: list[Finding] = field(default_factory=list)
    new_acknowledgments: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    diff_tool: str = "json"  # "cdk" when full diffs come from `cdk diff --template`

    @property
    def has_changes(self) -> bool:
        return bool(
            self.stacks
            or self.models
            or self.new_findings
            or self.resolved_findings
            or self.new_acknowledgments
        )

    def changes(self, *kinds: str) -> list[ResourceChange]:
        return [c for s in self.stacks for c in s.changes if not kinds or c.kind in kinds]

    @property
    def stateful_warnings(self) -> list[ResourceChange]:
        return [
            c
            for c in self.changes("replaced", "removed", "modified")
            if c.stateful and (c.kind != "modified" or c.failing or "retention" in c.note)
        ] + [c for c in self.changes("modified") if c.failing and not c.stateful]


# ---------------------------------------------------------------- rendering values


def render_value(value: Any) -> str:
    """A compact, readable form of a template value (intrinsics as ${Id.Attr})."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return "${" + str(arg) + "}"
        if fn == "Fn::GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return "${" + ".".join(str(p) for p in parts) + "}"
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            sep, items = arg
            if isinstance(items, list):
                return str(sep).join(render_value(i) for i in items)
        if fn == "Fn::Sub":
            return str(arg[0] if isinstance(arg, list) else arg)
        if fn == "Fn::ImportValue":
            return "import(" + render_value(arg) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def references(value: Any) -> set[str]:
    """Logical ids a value refers to through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for fn, arg in value.items():
            if fn == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif fn == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) and arg else str(arg).split(".")[0]
                found.add(str(target))
            elif fn == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) and arg else arg
                if isinstance(text, str):
                    found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                if isinstance(arg, list) and len(arg) > 1:
                    found |= references(arg[1])
            else:
                found |= references(arg)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return {r for r in found if not r.startswith("AWS::")}


def get_path(props: dict[str, Any], path: str) -> Any:
    value: Any = props
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- template access


def resources_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    res = template.get("Resources") or {}
    return {
        lid: r
        for lid, r in res.items()
        if isinstance(r, dict) and r.get("Type") not in IGNORED_TYPES
    }


def props_of(resource: dict[str, Any]) -> dict[str, Any]:
    props = resource.get("Properties")
    return props if isinstance(props, dict) else {}


def cdk_path(resource: dict[str, Any]) -> str:
    meta = resource.get("Metadata")
    return str(meta.get("aws:cdk:path", "")) if isinstance(meta, dict) else ""


def retained(resource: dict[str, Any]) -> bool:
    return resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate", "Snapshot")
