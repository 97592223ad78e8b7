"""The definition as a plan: every step (branch steps too) in dependency order, and the parameter values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.local.expressions import referenced_steps
from mlops.local.runner.records import LocalRunError


@dataclass
class StepNode:
    name: str
    type: str
    spec: dict[str, Any]
    index: int
    branch_of: tuple[str, bool] | None = None  # (condition step, True for IfSteps)
    depends: set[str] = field(default_factory=set)


def _flatten(steps: list[Any], branch_of: tuple[str, bool] | None, out: list[StepNode]) -> None:
    for spec in steps:
        if not isinstance(spec, dict) or "Name" not in spec or "Type" not in spec:
            raise LocalRunError(f"every step needs a Name and a Type, got {str(spec)[:80]}")
        node = StepNode(spec["Name"], spec["Type"], spec, len(out), branch_of)
        out.append(node)
        if node.type == "Condition":
            args = spec.get("Arguments", {})
            _flatten(args.get("IfSteps", []), (node.name, True), out)
            _flatten(args.get("ElseSteps", []), (node.name, False), out)


def _dependencies(node: StepNode) -> set[str]:
    spec = node.spec
    if node.type == "Condition":
        refs = referenced_steps(spec.get("Arguments", {}).get("Conditions", []))
    else:
        refs = referenced_steps({k: v for k, v in spec.items() if k != "Name"})
    refs |= set(spec.get("DependsOn", []))
    if node.branch_of:
        refs.add(node.branch_of[0])
    refs.discard(node.name)
    return refs


def parse_steps(definition: Mapping[str, Any]) -> list[StepNode]:
    """All steps (branch steps included) in an order that respects every dependency."""
    nodes: list[StepNode] = []
    _flatten(list(definition.get("Steps", [])), None, nodes)
    names = [n.name for n in nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LocalRunError(f"step names must be unique; repeated: {', '.join(duplicates)}")
    by_name = {n.name: n for n in nodes}
    for node in nodes:
        node.depends = _dependencies(node)
        unknown = sorted(node.depends - by_name.keys())
        if unknown:
            raise LocalRunError(f"step {node.name} refers to unknown steps: {', '.join(unknown)}")
    ordered: list[StepNode] = []
    done: set[str] = set()
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if n.depends <= done]
        if not ready:
            cycle = ", ".join(n.name for n in pending)
            raise LocalRunError(f"the step dependencies form a cycle among: {cycle}")
        node = min(ready, key=lambda n: n.index)  # stable: definition order
        ordered.append(node)
        done.add(node.name)
        pending.remove(node)
    return ordered


def resolve_parameters(
    definition: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides or {}) - declared.keys())
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise LocalRunError(
            f"unknown pipeline parameter(s) {', '.join(unknown)} (defined: {known})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        kind = spec.get("Type", "String")
        if overrides and name in overrides:
            raw = overrides[name]
        elif "DefaultValue" in spec:
            raw = spec["DefaultValue"]
        else:
            raise LocalRunError(f"pipeline parameter {name} has no default; give a value")
        values[name] = _coerce_parameter(name, kind, raw)
    return values


def _coerce_parameter(name: str, kind: str, raw: Any) -> Any:
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "false"):
                return str(raw).lower() == "true"
            raise ValueError(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise LocalRunError(f"pipeline parameter {name} must be a {kind}, got {raw!r}") from None
