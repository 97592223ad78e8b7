"""Typed helpers for SageMaker Pipeline expressions, emitted as plain JSON-ready dicts.

The pipeline service evaluates these at run time: `{"Get": ...}` reads a parameter, an
execution variable or a property of an earlier step; `Std:Join` concatenates; `Std:JsonGet`
reads a value from a step's property file. Conditions follow the shapes the service accepts:
there is no "And" condition type, the condition step's list of conditions is the AND.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# A pipeline expression: a one-key dict the service evaluates at run time.
Expression = dict[str, Any]
# What may stand where the service expects a value.
Value = str | int | float | bool | Expression

EXPRESSION_KEYS: frozenset[str] = frozenset({"Get", "Std:Join", "Std:JsonGet"})

EXECUTION_VARIABLES: tuple[str, ...] = (
    "CurrentDateTime",
    "PipelineArn",
    "PipelineExecutionArn",
    "PipelineExecutionId",
    "PipelineName",
    "StartDateTime",
)


class ParameterType(StrEnum):
    STRING = "String"
    INTEGER = "Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"


_PYTHON_TYPES: dict[ParameterType, tuple[type, ...]] = {
    ParameterType.STRING: (str,),
    ParameterType.INTEGER: (int,),
    ParameterType.FLOAT: (float, int),
    ParameterType.BOOLEAN: (bool,),
}


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter: overridable per execution, `default` when not given."""

    name: str
    type: ParameterType
    default: str | int | float | bool

    def __post_init__(self) -> None:
        allowed = _PYTHON_TYPES[self.type]
        # bool is an int in Python; only a Boolean parameter may default to one.
        is_bool = isinstance(self.default, bool)
        if (is_bool and self.type is not ParameterType.BOOLEAN) or not isinstance(
            self.default, allowed
        ):
            raise ValueError(
                f"parameter {self.name}: default {self.default!r} is not a {self.type.value}"
            )

    @property
    def ref(self) -> Expression:
        return {"Get": f"Parameters.{self.name}"}

    def to_json(self) -> dict[str, Any]:
        default = float(self.default) if self.type is ParameterType.FLOAT else self.default
        return {"Name": self.name, "Type": self.type.value, "DefaultValue": default}


def is_expression(value: object) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def execution_variable(name: str) -> Expression:
    if name not in EXECUTION_VARIABLES:
        raise ValueError(
            f"unknown execution variable {name!r} (allowed: {', '.join(EXECUTION_VARIABLES)})"
        )
    return {"Get": f"Execution.{name}"}


def step_property(step_name: str, path: str) -> Expression:
    return {"Get": f"Steps.{step_name}.{path}"}


def processing_output_uri(step_name: str, output_name: str) -> Expression:
    return step_property(
        step_name, f"ProcessingOutputConfig.Outputs['{output_name}'].S3Output.S3Uri"
    )


def model_artifacts_uri(step_name: str) -> Expression:
    return step_property(step_name, "ModelArtifacts.S3ModelArtifacts")


def lambda_output(step_name: str, output_name: str) -> Expression:
    return step_property(step_name, f"OutputParameters['{output_name}']")


def tuning_training_job_name(step_name: str, rank: int = 0) -> Expression:
    """Name of the rank-th best training job of a tuning step (0 = best, up to 49)."""
    if not 0 <= rank <= 49:
        raise ValueError(f"tuning rank {rank} is outside 0..49")
    return step_property(step_name, f"TrainingJobSummaries[{rank}].TrainingJobName")


def join(values: Iterable[Value], on: str = "") -> Expression:
    return {"Std:Join": {"On": on, "Values": list(values)}}


@dataclass(frozen=True)
class PropertyFile:
    """A JSON file a processing step writes into one of its outputs, readable by JsonGet."""

    name: str
    output_name: str
    path: str

    def to_json(self) -> dict[str, str]:
        return {
            "PropertyFileName": self.name,
            "OutputName": self.output_name,
            "FilePath": self.path,
        }

    def json_get(self, step_name: str, json_path: str) -> Expression:
        return json_get(step_name, self.name, json_path)


def json_get(step_name: str, property_file_name: str, json_path: str) -> Expression:
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.{step_name}.PropertyFiles.{property_file_name}"},
            "Path": json_path,
        }
    }


# ---- Conditions ----------------------------------------------------------------------------

Condition = dict[str, Any]

COMPARISON_TYPES: tuple[str, ...] = (
    "Equals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
)
CONDITION_TYPES: tuple[str, ...] = (*COMPARISON_TYPES, "In", "Not", "Or")


def compare(condition_type: str, left: Value, right: Value) -> Condition:
    if condition_type not in COMPARISON_TYPES:
        raise ValueError(
            f"unknown comparison {condition_type!r} (allowed: {', '.join(COMPARISON_TYPES)})"
        )
    return {"Type": condition_type, "LeftValue": left, "RightValue": right}


def equals(left: Value, right: Value) -> Condition:
    return compare("Equals", left, right)


def greater_than(left: Value, right: Value) -> Condition:
    return compare("GreaterThan", left, right)


def greater_than_or_equal_to(left: Value, right: Value) -> Condition:
    return compare("GreaterThanOrEqualTo", left, right)


def less_than(left: Value, right: Value) -> Condition:
    return compare("LessThan", left, right)


def less_than_or_equal_to(left: Value, right: Value) -> Condition:
    return compare("LessThanOrEqualTo", left, right)


def is_in(value: Value, values: Iterable[Value]) -> Condition:
    return {"Type": "In", "QueryValue": value, "Values": list(values)}


def not_(condition: Condition) -> Condition:
    return {"Type": "Not", "Expression": condition}


def or_(*conditions: Condition) -> Condition:
    if not conditions:
        raise ValueError("or_ needs at least one condition")
    return {"Type": "Or", "Conditions": list(conditions)}


def and_(*conditions: Condition) -> Condition:
    """AND for nesting inside Or/Not (De Morgan). At top level pass the list to the step."""
    if not conditions:
        raise ValueError("and_ needs at least one condition")
    return not_(or_(*(not_(c) for c in conditions)))


def walk_expressions(value: object) -> Iterator[Expression]:
    """Every expression inside a JSON tree, outer ones before the ones they contain."""
    if isinstance(value, dict):
        if is_expression(value):
            yield value
        for item in value.values():
            yield from walk_expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_expressions(item)
