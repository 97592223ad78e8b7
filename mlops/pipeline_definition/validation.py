"""Check a pipeline definition against botocore's SageMaker service model.

Each job step's Arguments are the request of the API the step calls, minus the job name the
service injects. Pipeline expressions are replaced by a placeholder of the type the request
shape expects at that position, then botocore's ParamValidator checks the request. botocore
only checks types, required members and minimum lengths, so literal values are also checked
here for maximum lengths, enums and patterns. The definition-level checks (unique step
names, references to steps, parameters and property files) are ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlops.pipeline_definition.expressions import (
    CONDITION_TYPES,
    EXECUTION_VARIABLES,
    is_expression,
)

# Request-shape checks live in their own module; both names stay importable from here.
from mlops.pipeline_definition.request_shapes import sagemaker_model as sagemaker_model
from mlops.pipeline_definition.request_shapes import validate_request

# Step type -> (request shape, the required name member the pipeline service fills in).
JOB_REQUESTS: dict[str, tuple[str, dict[str, str]]] = {
    "Processing": ("CreateProcessingJobRequest", {"ProcessingJobName": "placeholder-job"}),
    "Training": ("CreateTrainingJobRequest", {"TrainingJobName": "placeholder-job"}),
    "Tuning": (
        "CreateHyperParameterTuningJobRequest",
        {"HyperParameterTuningJobName": "placeholder-job"},
    ),
    "RegisterModel": ("CreateModelPackageInput", {}),
}
STEP_TYPES: frozenset[str] = frozenset({*JOB_REQUESTS, "Lambda", "Condition", "Fail"})
JOB_STEP_TYPES: frozenset[str] = frozenset({"Processing", "Training", "Tuning"})
LAMBDA_OUTPUT_TYPES: frozenset[str] = frozenset({"String", "Integer", "Boolean", "Float"})
PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "Integer": (int,),
    "Float": (float, int),
    "Boolean": (bool,),
}
_STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9\-_]+)(?:\.(.*))?$")
_OUTPUT_REF = re.compile(r"^ProcessingOutputConfig\.Outputs\['([^']+)'\]")
_LAMBDA_REF = re.compile(r"^OutputParameters\['([^']+)'\]$")
_PROPERTY_FILE_REF = re.compile(r"^PropertyFiles\.([A-Za-z0-9\-_]+)$")


def validate_definition(definition: Mapping[str, Any]) -> list[str]:
    """Every problem found, one line each naming the step and the path; [] when valid."""
    problems: list[str] = []
    parameters = _check_parameters(definition.get("Parameters", []), problems)
    steps = list(_all_steps(definition.get("Steps"), "Steps", problems))
    by_name: dict[str, Mapping[str, Any]] = {}
    for step, where in steps:
        name = step.get("Name")
        if not isinstance(name, str) or not _STEP_NAME.match(name):
            problems.append(f"{where}: step name {name!r} must match {_STEP_NAME.pattern}")
            continue
        if name in by_name:
            problems.append(f"{where}: step name {name!r} is used more than once")
            continue
        by_name[name] = step
    for step, where in steps:
        label = step.get("Name") if isinstance(step.get("Name"), str) else where
        problems.extend(f"{label}: {p}" for p in _check_step(step, parameters))
        problems.extend(f"{label}: {p}" for p in _check_references(step, by_name, parameters))
    return problems


# ---- Definition level ----------------------------------------------------------------------


def _check_parameters(raw: object, problems: list[str]) -> dict[str, str]:
    declared: dict[str, str] = {}
    if not isinstance(raw, list):
        problems.append("Parameters: must be a list")
        return declared
    for index, parameter in enumerate(raw):
        where = f"Parameters[{index}]"
        if not isinstance(parameter, dict):
            problems.append(f"{where}: must be an object")
            continue
        name, kind = parameter.get("Name"), parameter.get("Type")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: Name must be a non-empty string")
            continue
        if name in declared:
            problems.append(f"{where}: parameter {name} is declared twice")
        if kind not in PARAMETER_TYPES:
            problems.append(f"{where}: Type {kind!r} is not one of {', '.join(PARAMETER_TYPES)}")
            continue
        default = parameter.get("DefaultValue")
        wrong_bool = isinstance(default, bool) and kind != "Boolean"
        if default is not None and (wrong_bool or not isinstance(default, PARAMETER_TYPES[kind])):
            problems.append(f"{where}: DefaultValue {default!r} of {name} is not a {kind}")
        declared[name] = kind
    return declared


def _all_steps(raw: object, where: str, problems: list[str]) -> Iterator[tuple[dict, str]]:
    """Top-level steps and those nested in condition steps, with where they are."""
    if not isinstance(raw, list):
        problems.append(f"{where}: must be a list of steps")
        return
    for index, step in enumerate(raw):
        here = f"{where}[{index}]"
        if not isinstance(step, dict):
            problems.append(f"{here}: a step must be an object")
            continue
        yield step, here
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments")
            if isinstance(arguments, dict):
                for branch in ("IfSteps", "ElseSteps"):
                    yield from _all_steps(
                        arguments.get(branch, []), f"{here}.Arguments.{branch}", problems
                    )


# ---- Step level ----------------------------------------------------------------------------


def _check_step(step: Mapping[str, Any], parameters: Mapping[str, str]) -> list[str]:
    step_type = step.get("Type")
    arguments = step.get("Arguments")
    problems = _check_common(step)
    if step_type not in STEP_TYPES:
        return [*problems, f"Type {step_type!r} is not one of {', '.join(sorted(STEP_TYPES))}"]
    if not isinstance(arguments, dict):
        return [*problems, "Arguments must be an object"]
    if step_type in JOB_REQUESTS:
        shape_name, injected = JOB_REQUESTS[step_type]
        problems += validate_request(shape_name, {**arguments, **injected}, parameters)
    elif step_type == "Lambda":
        problems += _check_lambda(step)
    elif step_type == "Condition":
        problems += _check_condition_step(arguments)
    elif step_type == "Fail":
        message = arguments.get("ErrorMessage")
        if not (isinstance(message, str) or is_expression(message)):
            problems.append("Arguments.ErrorMessage must be a string or an expression")
    if "PropertyFiles" in step and step_type != "Processing":
        problems.append("PropertyFiles are only allowed on Processing steps")
    if step_type == "Processing":
        problems += _check_property_files(step)
    return problems


def _check_common(step: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    allowed = {
        "Name", "Type", "Arguments", "DependsOn", "DisplayName", "Description", "RetryPolicies",
        "CacheConfig", "PropertyFiles", "FunctionArn", "OutputParameters",
    }  # fmt: skip
    unknown = sorted(set(step) - allowed)
    if unknown:
        problems.append(f"unknown step fields {unknown} (allowed: {', '.join(sorted(allowed))})")
    cache = step.get("CacheConfig")
    if cache is not None and (
        not isinstance(cache, dict)
        or not isinstance(cache.get("Enabled"), bool)
        or not isinstance(cache.get("ExpireAfter", ""), str)
    ):
        problems.append("CacheConfig must be {Enabled: bool, ExpireAfter: str}")
    for index, policy in enumerate(step.get("RetryPolicies", [])):
        problems += _check_retry_policy(step.get("Type"), policy, f"RetryPolicies[{index}]")
    return problems


def _check_retry_policy(step_type: object, policy: object, where: str) -> list[str]:
    if not isinstance(policy, dict):
        return [f"{where}: must be an object"]
    problems = []
    kinds = policy.get("ExceptionType")
    if not isinstance(kinds, list) or not kinds:
        problems.append(f"{where}.ExceptionType must be a non-empty list")
        kinds = []
    for kind in kinds:
        if not isinstance(kind, str) or not kind.startswith(("Step.", "SageMaker.")):
            problems.append(f"{where}.ExceptionType: {kind!r} is not a Step.* or SageMaker.* type")
        elif kind.startswith("SageMaker.") and step_type not in JOB_STEP_TYPES:
            problems.append(f"{where}.ExceptionType: {kind} only applies to job steps")
    if ("MaxAttempts" in policy) == ("ExpireAfterMin" in policy):
        problems.append(f"{where}: give exactly one of MaxAttempts and ExpireAfterMin")
    return problems


def _check_lambda(step: Mapping[str, Any]) -> list[str]:
    problems = []
    if not isinstance(step.get("FunctionArn"), str) or not step["FunctionArn"]:
        problems.append("FunctionArn must be a non-empty string")
    outputs = step.get("OutputParameters", [])
    if not isinstance(outputs, list):
        return [*problems, "OutputParameters must be a list"]
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("OutputName"), str):
            problems.append(f"OutputParameters[{index}].OutputName must be a string")
        elif output.get("OutputType", "String") not in LAMBDA_OUTPUT_TYPES:
            problems.append(
                f"OutputParameters[{index}].OutputType {output.get('OutputType')!r} is not one "
                f"of {', '.join(sorted(LAMBDA_OUTPUT_TYPES))}"
            )
    return problems


def _check_condition_step(arguments: Mapping[str, Any]) -> list[str]:
    conditions = arguments.get("Conditions")
    if not isinstance(conditions, list) or not conditions:
        return ["Arguments.Conditions must be a non-empty list"]
    problems: list[str] = []
    for index, condition in enumerate(conditions):
        problems += _check_condition(condition, f"Arguments.Conditions[{index}]")
    return problems


def _check_condition(condition: object, where: str) -> list[str]:
    if not isinstance(condition, dict):
        return [f"{where}: a condition must be an object"]
    kind = condition.get("Type")
    if kind not in CONDITION_TYPES:
        return [f"{where}.Type {kind!r} is not one of {', '.join(CONDITION_TYPES)}"]
    if kind == "Not":
        return _check_condition(condition.get("Expression"), f"{where}.Expression")
    if kind == "Or":
        nested = condition.get("Conditions")
        if not isinstance(nested, list) or not nested:
            return [f"{where}.Conditions must be a non-empty list"]
        return [p for i, c in enumerate(nested) for p in _check_condition(c, f"{where}[{i}]")]
    needed = ("QueryValue", "Values") if kind == "In" else ("LeftValue", "RightValue")
    return [f"{where}: {kind} needs {key}" for key in needed if key not in condition]


def _check_property_files(step: Mapping[str, Any]) -> list[str]:
    outputs = _processing_outputs(step)
    problems = []
    for index, item in enumerate(step.get("PropertyFiles", [])):
        where = f"PropertyFiles[{index}]"
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("PropertyFileName", "OutputName", "FilePath")
        ):
            problems.append(f"{where} needs string PropertyFileName, OutputName and FilePath")
        elif item["OutputName"] not in outputs:
            problems.append(
                f"{where}: OutputName {item['OutputName']!r} is not an output of this step "
                f"(outputs: {', '.join(sorted(map(str, outputs)))})"
            )
    return problems


def _processing_outputs(step: Mapping[str, Any]) -> set[object]:
    config = step.get("Arguments", {}).get("ProcessingOutputConfig", {})
    outputs = config.get("Outputs", []) if isinstance(config, dict) else []
    return {o.get("OutputName") for o in outputs if isinstance(o, dict)}


def _property_files(step: Mapping[str, Any]) -> set[object]:
    return {p.get("PropertyFileName") for p in step.get("PropertyFiles", []) if isinstance(p, dict)}


# ---- References ----------------------------------------------------------------------------


def _check_references(
    step: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    parameters: Mapping[str, str],
) -> list[str]:
    problems = []
    own = step.get("Name")
    for dependency in step.get("DependsOn", []):
        if dependency not in by_name:
            problems.append(f"DependsOn: no step named {dependency!r}")
    # A condition step's nested steps are checked on their own.
    body = {k: v for k, v in step.items() if k != "Arguments"}
    arguments = step.get("Arguments")
    if step.get("Type") == "Condition" and isinstance(arguments, dict):
        body["Arguments"] = {
            k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")
        }
    else:
        body["Arguments"] = arguments
    for path, expression in _expressions(body, ""):
        problems += _check_expression(expression, path, own, by_name, parameters)
    return problems


def _expressions(value: object, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        if is_expression(value):
            yield path, value
        for key, item in value.items():
            yield from _expressions(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _expressions(item, f"{path}[{index}]")


def _check_expression(
    expression: dict[str, Any],
    path: str,
    own: object,
    by_name: Mapping[str, Mapping[str, Any]],
    parameters: Mapping[str, str],
) -> list[str]:
    key, body = next(iter(expression.items()))
    if key == "Std:Join":
        ok = isinstance(body, dict) and isinstance(body.get("On"), str)
        if not ok or not isinstance(body.get("Values"), list):
            return [f"{path}: Std:Join needs On (string) and Values (list)"]
        return []
    if key == "Std:JsonGet":
        if not isinstance(body, dict) or not isinstance(body.get("Path"), str) or not body["Path"]:
            return [f"{path}: Std:JsonGet needs a non-empty Path"]
        reference = body.get("PropertyFile")
        target = reference.get("Get") if isinstance(reference, dict) else None
        match = _STEP_REF.match(target) if isinstance(target, str) else None
        if not match or not _PROPERTY_FILE_REF.match(match.group(2) or ""):
            return [f"{path}: Std:JsonGet PropertyFile must be Get Steps.<step>.PropertyFiles.<n>"]
        return []  # the Get inside is checked on its own
    if not isinstance(body, str):
        return [f"{path}: Get needs a string"]
    if body.startswith("Parameters."):
        name = body.removeprefix("Parameters.")
        return [] if name in parameters else [f"{path}: Get {body}: no parameter named {name!r}"]
    if body.startswith("Execution."):
        name = body.removeprefix("Execution.")
        if name in EXECUTION_VARIABLES:
            return []
        return [f"{path}: Get {body}: unknown execution variable (known: {EXECUTION_VARIABLES})"]
    match = _STEP_REF.match(body)
    if not match:
        return [f"{path}: Get {body!r} is not a Parameters., Execution. or Steps. reference"]
    target_name, property_path = match.group(1), match.group(2) or ""
    if target_name not in by_name:
        return [f"{path}: Get {body}: no step named {target_name!r}"]
    if target_name == own:
        return [f"{path}: Get {body}: a step cannot refer to itself"]
    return _check_property_path(body, path, by_name[target_name], property_path)


def _check_property_path(
    reference: str, path: str, target: Mapping[str, Any], property_path: str
) -> list[str]:
    target_type = target.get("Type")
    if match := _OUTPUT_REF.match(property_path):
        outputs = _processing_outputs(target) if target_type == "Processing" else set()
        if match.group(1) not in outputs:
            return [f"{path}: Get {reference}: step {target.get('Name')} has no such output"]
    elif match := _LAMBDA_REF.match(property_path):
        names = {o.get("OutputName") for o in target.get("OutputParameters", [])}
        if target_type != "Lambda" or match.group(1) not in names:
            return [f"{path}: Get {reference}: step {target.get('Name')} has no such output"]
    elif match := _PROPERTY_FILE_REF.match(property_path):
        if match.group(1) not in _property_files(target):
            return [f"{path}: Get {reference}: step {target.get('Name')} has no such property file"]
    elif property_path.startswith("ModelArtifacts") and target_type != "Training":
        return [f"{path}: Get {reference}: only Training steps have ModelArtifacts"]
    elif property_path.startswith("TrainingJobSummaries") and target_type != "Tuning":
        return [f"{path}: Get {reference}: only Tuning steps have TrainingJobSummaries"]
    return []
