"""Evaluate SageMaker pipeline expressions and conditions locally.

The definition JSON uses three expression forms (see the SDK-emitted reference):

    {"Get": "Parameters.AucThreshold"}
    {"Get": "Execution.PipelineExecutionId"}
    {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    {"Std:Join": {"On": "/", "Values": [...]}}
    {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                     "Path": "binary_classification_metrics.auc.value"}}

and conditions ({"Type": "GreaterThanOrEqualTo", "LeftValue", "RightValue"}, "In" with
"QueryValue"/"Values", "Not" with "Expression", "Or"/"And" with "Conditions"; a condition
step's list of conditions is an implicit AND).

Step properties are the evaluated request of the step plus what the Describe* API returns
(job name, ModelArtifacts ...), so a property path is walked over plain dicts and lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

EXPRESSION_KEYS = ("Get", "Std:Join", "Std:JsonGet")
COMPARISONS = (
    "Equals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
)


class ExpressionError(ValueError):
    """An expression that cannot be evaluated (unknown name, missing property, bad path)."""


@dataclass
class PropertyFile:
    """A JSON file a processing step declared as a PropertyFile, loaded after the step ran."""

    data: Any = None
    error: str | None = None


@dataclass
class EvalContext:
    """Everything an expression may read."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    property_files: dict[str, dict[str, PropertyFile]] = field(default_factory=dict)
    # Reads a JSON document from a URI (Std:JsonGet with S3Uri instead of a PropertyFile).
    read_json: Callable[[str], Any] | None = None


def is_expression(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def to_pipeline_string(value: Any) -> str:
    """How the service renders a value inside a string (Std:Join, hyperparameters)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def evaluate(value: Any, ctx: EvalContext) -> Any:
    """Evaluate every expression inside `value` (dicts and lists are walked)."""
    if is_expression(value):
        key, body = next(iter(value.items()))
        if key == "Get":
            return _get(body, ctx)
        if key == "Std:Join":
            return _join(body, ctx)
        return _json_get(body, ctx)
    if isinstance(value, dict):
        return {k: evaluate(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    return value


def _get(reference: Any, ctx: EvalContext) -> Any:
    if not isinstance(reference, str):
        raise ExpressionError(f"Get needs a string reference, got {reference!r}")
    root, _, rest = reference.partition(".")
    if root == "Parameters":
        if rest not in ctx.parameters:
            known = ", ".join(sorted(ctx.parameters)) or "none"
            raise ExpressionError(f"unknown pipeline parameter {rest!r} (defined: {known})")
        return ctx.parameters[rest]
    if root == "Execution":
        if rest not in ctx.execution:
            raise ExpressionError(f"unknown execution variable {rest!r}")
        return ctx.execution[rest]
    if root == "Steps":
        step, path = split_step_reference(reference)
        if step not in ctx.steps:
            raise ExpressionError(f"{reference}: step {step!r} has not run")
        tokens = parse_path(path)
        if tokens and tokens[0] == "PropertyFiles":
            raise ExpressionError(f"{reference}: a property file can only be read by Std:JsonGet")
        return lookup(ctx.steps[step], tokens, what=reference)
    raise ExpressionError(f"unknown reference {reference!r} (Parameters, Execution or Steps)")


def split_step_reference(reference: str) -> tuple[str, str]:
    """'Steps.Train.ModelArtifacts.S3ModelArtifacts' -> ('Train', 'ModelArtifacts.S3...')."""
    match = re.match(r"^Steps\.([A-Za-z0-9_\-]+)(.*)$", reference)
    if not match:
        raise ExpressionError(f"malformed step reference {reference!r}")
    return match.group(1), match.group(2).lstrip(".")


_TOKEN = re.compile(r"""\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*(-?\d+)\s*\]|([^.\[\]]+)""")


def parse_path(path: str) -> list[str | int]:
    """Split a property or JSON path into keys and list indexes.

    Accepts `a.b[0].c`, `Outputs['train']`, `a["b c"]` and a leading `$.` (JsonPath style).
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    tokens: list[str | int] = []
    pos = 0
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if not match:
            raise ExpressionError(f"malformed path {path!r} at position {pos}")
        single, double, index, name = match.groups()
        if index is not None:
            tokens.append(int(index))
        else:
            tokens.append(next(t for t in (single, double, name) if t is not None))
        pos = match.end()
    return tokens


def lookup(data: Any, tokens: list[str | int], *, what: str) -> Any:
    """Walk dicts and lists. A string key on a list selects the item named so
    (Outputs['train'] picks the output whose OutputName is 'train')."""
    current = data
    for token in tokens:
        if isinstance(token, int):
            if not isinstance(current, list) or not -len(current) <= token < len(current):
                raise ExpressionError(f"{what}: index [{token}] out of range")
            current = current[token]
        elif isinstance(current, dict):
            if token not in current:
                known = ", ".join(sorted(map(str, current))) or "nothing"
                raise ExpressionError(f"{what}: no {token!r} (available: {known})")
            current = current[token]
        elif isinstance(current, list):
            current = _named_item(current, token, what)
        else:
            raise ExpressionError(f"{what}: cannot read {token!r} from {type(current).__name__}")
    return current


def _named_item(items: list[Any], name: str, what: str) -> Any:
    for item in items:
        if isinstance(item, dict) and any(
            key.endswith("Name") and value == name for key, value in item.items()
        ):
            return item
    raise ExpressionError(f"{what}: no item named {name!r}")


def _join(body: Any, ctx: EvalContext) -> str:
    if not isinstance(body, dict) or "Values" not in body:
        raise ExpressionError(f"Std:Join needs On and Values, got {body!r}")
    values = evaluate(body["Values"], ctx)
    if not isinstance(values, list):
        raise ExpressionError("Std:Join Values must be a list")
    return to_pipeline_string(evaluate(body.get("On", ""), ctx)).join(
        to_pipeline_string(v) for v in values
    )


def _json_get(body: Any, ctx: EvalContext) -> Any:
    if not isinstance(body, dict) or "Path" not in body:
        raise ExpressionError(f"Std:JsonGet needs Path and PropertyFile or S3Uri, got {body!r}")
    path = to_pipeline_string(evaluate(body["Path"], ctx))
    if "PropertyFile" in body:
        data, source = _property_file(body["PropertyFile"], ctx)
    elif "S3Uri" in body:
        uri = to_pipeline_string(evaluate(body["S3Uri"], ctx))
        if ctx.read_json is None:
            raise ExpressionError(f"Std:JsonGet cannot read {uri}: no reader configured")
        data, source = ctx.read_json(uri), uri
    else:
        raise ExpressionError("Std:JsonGet needs a PropertyFile or an S3Uri")
    return lookup(data, parse_path(path), what=f"Std:JsonGet {path!r} in {source}")


def _property_file(ref: Any, ctx: EvalContext) -> tuple[Any, str]:
    reference = ref.get("Get") if isinstance(ref, dict) else ref
    if not isinstance(reference, str):
        raise ExpressionError(f"Std:JsonGet PropertyFile must be a Get reference, got {ref!r}")
    step, path = split_step_reference(reference)
    tokens = parse_path(path)
    if len(tokens) != 2 or tokens[0] != "PropertyFiles":
        raise ExpressionError(f"{reference}: expected Steps.<step>.PropertyFiles.<name>")
    name = str(tokens[1])
    files = ctx.property_files.get(step)
    if files is None:
        raise ExpressionError(f"{reference}: step {step!r} has not run or has no property files")
    if name not in files:
        raise ExpressionError(f"{reference}: step {step!r} declares no property file {name!r}")
    loaded = files[name]
    if loaded.error:
        raise ExpressionError(f"property file {name} of step {step}: {loaded.error}")
    return loaded.data, f"property file {name} of step {step}"


# ---------------------------------------------------------------- conditions


def evaluate_conditions(conditions: list[Any], ctx: EvalContext) -> bool:
    """A condition step's Conditions list: all must hold."""
    return all(evaluate_condition(c, ctx) for c in conditions)


def evaluate_condition(condition: Any, ctx: EvalContext) -> bool:
    if not isinstance(condition, dict) or "Type" not in condition:
        raise ExpressionError(f"a condition needs a Type, got {condition!r}")
    kind = condition["Type"]
    if kind in COMPARISONS:
        left = evaluate(condition.get("LeftValue"), ctx)
        right = evaluate(condition.get("RightValue"), ctx)
        return compare(kind, left, right)
    if kind == "In":
        query = evaluate(condition.get("QueryValue"), ctx)
        return any(compare("Equals", query, v) for v in evaluate(condition["Values"], ctx))
    if kind == "Not":
        return not evaluate_condition(condition["Expression"], ctx)
    if kind == "Or":
        return any(evaluate_condition(c, ctx) for c in condition["Conditions"])
    if kind == "And":
        return evaluate_conditions(condition["Conditions"], ctx)
    allowed = ", ".join((*COMPARISONS, "In", "Not", "Or", "And"))
    raise ExpressionError(f"unknown condition type {kind!r} (allowed: {allowed})")


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def compare(kind: str, left: Any, right: Any) -> bool:
    """Numbers compare as numbers (a numeric string counts as a number), booleans as
    'true'/'false', everything else as strings."""
    lnum, rnum = _as_number(left), _as_number(right)
    a: Any
    b: Any
    if lnum is not None and rnum is not None:
        a, b = lnum, rnum
    elif isinstance(left, bool) or isinstance(right, bool):
        a, b = to_pipeline_string(left).lower(), to_pipeline_string(right).lower()
    elif isinstance(left, str) and isinstance(right, str):
        a, b = left, right
    elif kind == "Equals":
        return bool(left == right)
    else:
        raise ExpressionError(f"{kind}: cannot compare {left!r} with {right!r}")
    if kind == "Equals":
        return bool(a == b)
    if kind == "GreaterThan":
        return bool(a > b)
    if kind == "GreaterThanOrEqualTo":
        return bool(a >= b)
    if kind == "LessThan":
        return bool(a < b)
    return bool(a <= b)


# ---------------------------------------------------------------- references


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def referenced_steps(value: Any) -> set[str]:
    """Names of the steps whose properties or property files `value` reads."""
    names: set[str] = set()
    for node in _walk(value):
        if isinstance(node, dict) and isinstance(node.get("Get"), str):
            reference = node["Get"]
            if reference.startswith("Steps."):
                names.add(split_step_reference(reference)[0])
    return names


def referenced_parameters(value: Any) -> set[str]:
    names: set[str] = set()
    for node in _walk(value):
        if isinstance(node, dict) and isinstance(node.get("Get"), str):
            reference = node["Get"]
            if reference.startswith("Parameters."):
                names.add(reference.partition(".")[2])
    return names
