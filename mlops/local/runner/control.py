"""Lambda, Condition and Fail steps: local functions, the chosen branch, the failure."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mlops.local.expressions import (
    ExpressionError,
    evaluate,
    evaluate_conditions,
    to_pipeline_string,
)
from mlops.local.runner.plan import StepNode
from mlops.local.runner.records import StepFailure, StepResult
from mlops.local.runner.state import RunState, step_arguments


def _function_keys(node: StepNode, run: RunState) -> list[str]:
    keys = [node.name]
    arn = node.spec.get("FunctionArn")
    if arn is not None:
        try:
            value = to_pipeline_string(evaluate(arn, run.ctx))
        except ExpressionError:
            value = ""
        if value:
            keys.append(value)
            keys.append(value.split(":function:")[-1].split(":")[0])
    return keys


def _coerce_output(name: str, kind: str, value: Any) -> Any:
    try:
        if kind == "Integer":
            return int(value)
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
        return to_pipeline_string(value)
    except (TypeError, ValueError):
        raise StepFailure(f"Lambda output {name} is not a {kind}: {value!r}") from None


def run_lambda(node: StepNode, run: RunState, result: StepResult) -> None:
    args = step_arguments(node, run)
    keys = _function_keys(node, run)
    function = next((run.local_lambdas[k] for k in keys if k in run.local_lambdas), None)
    if function is None:
        raise StepFailure(
            f"no local implementation for Lambda step {node.name} (looked up {', '.join(keys)})"
        )
    started = time.perf_counter()
    try:
        returned = function(args)
    except Exception as exc:  # the function's own error is the step's failure reason
        raise StepFailure(f"Lambda function raised {type(exc).__name__}: {exc}") from exc
    result.script_seconds = time.perf_counter() - started
    if not isinstance(returned, Mapping):
        raise StepFailure(f"Lambda function returned {type(returned).__name__}, not an object")
    outputs: dict[str, Any] = {}
    for spec in node.spec.get("OutputParameters", []):
        name = spec["OutputName"]
        if name not in returned:
            raise StepFailure(
                f"Lambda function returned no output {name!r} (got {sorted(returned)})"
            )
        outputs[name] = _coerce_output(name, spec.get("OutputType", "String"), returned[name])
    run.ctx.steps[node.name] = {"OutputParameters": outputs}
    result.outputs = {name: to_pipeline_string(value) for name, value in outputs.items()}


def run_condition(node: StepNode, run: RunState, result: StepResult) -> None:
    conditions = node.spec.get("Arguments", {}).get("Conditions", [])
    outcome = evaluate_conditions(conditions, run.ctx)
    run.chosen[node.name] = outcome
    result.note = f"outcome {str(outcome).lower()}"
    run.ctx.steps[node.name] = {"Outcome": outcome}


def run_fail(node: StepNode, run: RunState, result: StepResult) -> None:
    message = evaluate(node.spec.get("Arguments", {}).get("ErrorMessage", ""), run.ctx)
    raise StepFailure(to_pipeline_string(message) or "the pipeline reached a Fail step")
