"""One API request (pipeline expressions allowed) against its botocore SageMaker shape:
expressions become placeholders of the type expected there, then botocore's ParamValidator
checks the request, and literal values are checked here for maximum lengths, enums and
patterns (botocore checks only types, required members and minimum lengths). Moved out of
validation.py whole; validation.py re-exports validate_request and sagemaker_model.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator

from mlops.pipeline_definition.expressions import is_expression

# Shape type -> the parameter types that may stand there.
_PARAMETER_FITS: dict[str, frozenset[str]] = {
    "string": frozenset({"String"}),
    "integer": frozenset({"Integer"}),
    "long": frozenset({"Integer"}),
    "float": frozenset({"Float", "Integer"}),
    "double": frozenset({"Float", "Integer"}),
    "boolean": frozenset({"Boolean"}),
}
# A CDK token inside a string: its value is only known at deploy time.
_CDK_TOKEN = re.compile(r"\$\{Token\[[^\]]+\]\}")


@functools.cache
def sagemaker_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def validate_request(
    shape_name: str, request: Mapping[str, Any], parameters: Mapping[str, str] | None = None
) -> list[str]:
    """Problems of one API request (expressions allowed) against its botocore shape."""
    shape = sagemaker_model().shape_for(shape_name)
    problems: list[str] = []
    concrete = _substitute(request, shape, "", problems, parameters or {})
    report = ParamValidator().validate(concrete, shape)
    if report.has_errors():
        problems += [
            f"Arguments: {line.strip()}"
            for line in report.generate_report().splitlines()
            if line.strip()
        ]
    return problems


def _substitute(
    value: Any, shape: Shape | None, path: str, problems: list[str], parameters: Mapping[str, str]
) -> Any:
    """The value with expressions replaced by placeholders; literal constraints checked."""
    if shape is None:
        return value  # unknown member: ParamValidator reports it
    where = f"Arguments.{path}" if path else "Arguments"
    kind = shape.type_name
    if is_expression(value):
        if kind in ("structure", "list", "map"):
            problems.append(f"{where}: an expression cannot stand for a {kind}")
            return value
        _check_parameter_fit(value, kind, where, problems, parameters)
        return _placeholder(shape)
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {
            k: _substitute(v, members.get(k), _join(path, k), problems, parameters)
            for k, v in value.items()
        }
    if kind == "list" and isinstance(value, list):
        _check_length(value, shape, where, problems)
        member = shape.member
        return [
            _substitute(v, member, f"{path}[{i}]", problems, parameters)
            for i, v in enumerate(value)
        ]
    if kind == "map" and isinstance(value, dict):
        _check_length(value, shape, where, problems)
        key_shape, value_shape = shape.key, shape.value
        for k in value:
            _check_literal(k, key_shape, f"{where} key {k!r}", problems)
        return {
            k: _substitute(v, value_shape, _join(path, k), problems, parameters)
            for k, v in value.items()
        }
    if isinstance(value, str) and _CDK_TOKEN.search(value):
        # Resolved at deploy time: only its type is known now.
        return value if kind != "string" else _placeholder(shape)
    _check_literal(value, shape, where, problems)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _placeholder(shape: Shape) -> Any:
    kind = shape.type_name
    low = shape.metadata.get("min", 1)
    if kind == "string":
        return "p" * max(int(low), 1)
    if kind in ("integer", "long"):
        return max(int(low), 1)
    if kind in ("float", "double"):
        return float(max(low, 1))
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return b"p"


def _check_parameter_fit(
    expression: dict[str, Any],
    kind: str,
    where: str,
    problems: list[str],
    parameters: Mapping[str, str],
) -> None:
    reference = expression.get("Get")
    if not isinstance(reference, str) or not reference.startswith("Parameters."):
        return
    declared = parameters.get(reference.removeprefix("Parameters."))
    fits = _PARAMETER_FITS.get(kind)
    if declared is not None and fits is not None and declared not in fits:
        problems.append(f"{where}: parameter {reference} is a {declared}, a {kind} is expected")


def _check_length(value: Any, shape: Shape, where: str, problems: list[str]) -> None:
    high = shape.metadata.get("max")
    if high is not None and len(value) > high:
        problems.append(f"{where}: {len(value)} items, at most {high} allowed")


def _check_literal(value: Any, shape: Shape, where: str, problems: list[str]) -> None:
    kind = shape.type_name
    if isinstance(value, bool) and kind in ("integer", "long", "float", "double"):
        problems.append(f"{where}: {value!r} is a boolean, a {kind} is expected")
        return
    if kind != "string" or not isinstance(value, str):
        return
    high = shape.metadata.get("max")
    if high is not None and len(value) > high:
        problems.append(f"{where}: {len(value)} characters, at most {high} allowed")
    enum = shape.enum
    if enum and value not in enum:
        problems.append(f"{where}: {value!r} is not one of {', '.join(enum)}")
    pattern = _compiled(shape.metadata.get("pattern"))
    if pattern is not None and not pattern.fullmatch(value):
        problems.append(f"{where}: {value!r} does not match the pattern {pattern.pattern}")


@functools.cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """AWS patterns are Java regexes; those Python cannot read (\\p{L} ...) are skipped."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None
