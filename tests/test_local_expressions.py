"""Pipeline expressions and conditions, evaluated as the service does."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mlops.local.expressions import (
    EvalContext,
    ExpressionError,
    PropertyFile,
    compare,
    evaluate,
    evaluate_condition,
    evaluate_conditions,
    parse_path,
    referenced_parameters,
    referenced_steps,
    to_pipeline_string,
)

REPORT = {
    "binary_classification_metrics": {"auc": {"value": 0.71, "standard_deviation": 0.01}},
    "comparison": {"not_significantly_worse": 1},
    "curves": [{"name": "roc", "points": [0.0, 0.5, 1.0]}],
    "odd key": {"v": "x"},
}


@pytest.fixture()
def ctx() -> EvalContext:
    return EvalContext(
        parameters={"AucThreshold": 0.7, "Bucket": "b", "Count": 2, "Metric": "auc", "On": True},
        execution={"PipelineExecutionId": "abc123", "PipelineName": "demo"},
        steps={
            "Preprocess": {
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/run/train"}},
                        {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/run/test"}},
                    ]
                }
            },
            "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/m/model.tar.gz"}},
            "Tune": {"TrainingJobSummaries": [{"TrainingJobName": "tune-001"}]},
            "FindIncumbent": {"OutputParameters": {"HasIncumbent": "false"}},
        },
        property_files={
            "Evaluate": {
                "EvaluationReport": PropertyFile(data=REPORT),
                "Broken": PropertyFile(error="evaluation.json was not written"),
            }
        },
        read_json=lambda uri: {"from": uri, "nested": {"k": 3}},
    )


def json_get(path: Any, name: str = "EvaluationReport") -> dict[str, Any]:
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.Evaluate.PropertyFiles.{name}"},
            "Path": path,
        }
    }


def test_get_parameters_execution_and_step_properties(ctx: EvalContext) -> None:
    assert evaluate({"Get": "Parameters.AucThreshold"}, ctx) == 0.7
    assert evaluate({"Get": "Execution.PipelineExecutionId"}, ctx) == "abc123"
    train_uri = "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    assert evaluate({"Get": train_uri}, ctx) == "s3://b/run/train"
    assert evaluate({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, ctx).endswith(".tar.gz")
    assert evaluate({"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}, ctx) == (
        "tune-001"
    )
    assert evaluate({"Get": "Steps.FindIncumbent.OutputParameters['HasIncumbent']"}, ctx) == (
        "false"
    )


def test_evaluate_walks_nested_arguments(ctx: EvalContext) -> None:
    args = {"A": [{"Get": "Parameters.Count"}, "x"], "B": {"C": {"Get": "Parameters.Bucket"}}}
    assert evaluate(args, ctx) == {"A": [2, "x"], "B": {"C": "b"}}


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("Parameters.Nope", "unknown pipeline parameter 'Nope'"),
        ("Execution.Nope", "unknown execution variable 'Nope'"),
        ("Steps.Ghost.X", "step 'Ghost' has not run"),
        (
            "Steps.Preprocess.ProcessingOutputConfig.Outputs['nope'].S3Output",
            "no item named 'nope'",
        ),
        ("Steps.Train.ModelArtifacts.Nope", "no 'Nope' (available: S3ModelArtifacts)"),
        ("Steps.Tune.TrainingJobSummaries[3].TrainingJobName", "index [3] out of range"),
        ("Steps.Evaluate.PropertyFiles.EvaluationReport", "step 'Evaluate' has not run"),
        ("Nothing.X", "unknown reference"),
    ],
)
def test_get_errors_name_what_is_missing(ctx: EvalContext, reference: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        evaluate({"Get": reference}, ctx)


def test_join_renders_values_like_the_service(ctx: EvalContext) -> None:
    expr = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3:/",
                {"Get": "Parameters.Bucket"},
                {"Get": "Execution.PipelineExecutionId"},
                {"Get": "Parameters.Count"},
                {"Get": "Parameters.On"},
                {"Get": "Parameters.AucThreshold"},
            ],
        }
    }
    assert evaluate(expr, ctx) == "s3://b/abc123/2/true/0.7"


def test_json_get_on_a_property_file(ctx: EvalContext) -> None:
    assert evaluate(json_get("binary_classification_metrics.auc.value"), ctx) == 0.71
    assert evaluate(json_get("curves[0].points[2]"), ctx) == 1.0
    assert evaluate(json_get("$.comparison.not_significantly_worse"), ctx) == 1
    assert evaluate(json_get("['odd key'].v"), ctx) == "x"


def test_json_get_with_a_std_join_path(ctx: EvalContext) -> None:
    path = {
        "Std:Join": {
            "On": ".",
            "Values": ["binary_classification_metrics", {"Get": "Parameters.Metric"}, "value"],
        }
    }
    assert evaluate(json_get(path), ctx) == 0.71


def test_json_get_with_an_s3_uri(ctx: EvalContext) -> None:
    expr = {"Std:JsonGet": {"S3Uri": {"Get": "Parameters.Bucket"}, "Path": "nested.k"}}
    assert evaluate(expr, ctx) == 3


def test_json_get_errors(ctx: EvalContext) -> None:
    with pytest.raises(ExpressionError, match="no 'recall'"):
        evaluate(json_get("binary_classification_metrics.recall.value"), ctx)
    with pytest.raises(ExpressionError, match=r"evaluation\.json was not written"):
        evaluate(json_get("a", name="Broken"), ctx)
    with pytest.raises(ExpressionError, match="declares no property file 'Other'"):
        evaluate(json_get("a", name="Other"), ctx)


def test_parse_path_forms() -> None:
    assert parse_path("Outputs['train'].S3Output.S3Uri") == [
        "Outputs",
        "train",
        "S3Output",
        "S3Uri",
    ]
    assert parse_path('a["b c"][1].d') == ["a", "b c", 1, "d"]
    assert parse_path("$.x[0]") == ["x", 0]


def _cmp(kind: str, left: Any, right: Any) -> dict[str, Any]:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            _cmp("GreaterThanOrEqualTo", json_get("binary_classification_metrics.auc.value"), 0.71),
            True,
        ),
        (_cmp("GreaterThanOrEqualTo", 0.69, {"Get": "Parameters.AucThreshold"}), False),
        (_cmp("GreaterThan", 0.71, 0.7), True),
        (_cmp("GreaterThan", 0.7, 0.7), False),
        (_cmp("LessThan", 1, 2), True),
        (_cmp("LessThanOrEqualTo", 2, 2), True),
        (_cmp("LessThanOrEqualTo", 3, 2), False),
        (_cmp("Equals", json_get("comparison.not_significantly_worse"), 1), True),
        (_cmp("Equals", "1", 1.0), True),
        (
            _cmp("Equals", {"Get": "Steps.FindIncumbent.OutputParameters['HasIncumbent']"}, "true"),
            False,
        ),
        (_cmp("Equals", {"Get": "Parameters.On"}, "true"), True),
        ({"Type": "In", "QueryValue": {"Get": "Parameters.Metric"}, "Values": ["f1", "auc"]}, True),
        ({"Type": "In", "QueryValue": 3, "Values": [1, 2]}, False),
        ({"Type": "Not", "Expression": _cmp("Equals", 1, 1)}, False),
        ({"Type": "Or", "Conditions": [_cmp("Equals", 1, 2), _cmp("Equals", 2, 2)]}, True),
        ({"Type": "Or", "Conditions": [_cmp("Equals", 1, 2), _cmp("Equals", 3, 2)]}, False),
        ({"Type": "And", "Conditions": [_cmp("Equals", 1, 1), _cmp("Equals", 3, 2)]}, False),
    ],
)
def test_conditions(ctx: EvalContext, condition: dict[str, Any], expected: bool) -> None:
    assert evaluate_condition(condition, ctx) is expected


def test_condition_list_is_an_and(ctx: EvalContext) -> None:
    assert evaluate_conditions([_cmp("Equals", 1, 1), _cmp("LessThan", 1, 2)], ctx) is True
    assert evaluate_conditions([_cmp("Equals", 1, 1), _cmp("LessThan", 3, 2)], ctx) is False


def test_bad_conditions_are_refused(ctx: EvalContext) -> None:
    with pytest.raises(ExpressionError, match="unknown condition type 'Xor'"):
        evaluate_condition({"Type": "Xor"}, ctx)
    with pytest.raises(ExpressionError, match="cannot compare"):
        compare("GreaterThan", "abc", 1)


def test_references_are_found_everywhere() -> None:
    args = {
        "A": [{"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}],
        "B": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.X"}]}},
        "C": json_get("a"),
        "D": {"Get": "Execution.PipelineExecutionId"},
    }
    assert referenced_steps(args) == {"Train", "Evaluate"}
    assert referenced_parameters(args) == {"X"}


def test_to_pipeline_string() -> None:
    assert [to_pipeline_string(v) for v in (True, 3, 0.5, None, "s")] == [
        "true",
        "3",
        "0.5",
        "",
        "s",
    ]


# ---- every comparison below, at and above its edge ---------------------------------------------

# (left, right) = (1, 2), (2, 2), (3, 2)
EDGES = {
    "GreaterThan": (False, False, True),
    "GreaterThanOrEqualTo": (False, True, True),
    "LessThan": (True, False, False),
    "LessThanOrEqualTo": (True, True, False),
    "Equals": (False, True, False),
}


@pytest.mark.parametrize("kind", list(EDGES))
def test_each_comparison_below_at_and_above_the_right_value(ctx: EvalContext, kind: str) -> None:
    for left, expected in zip((1, 2, 3), EDGES[kind], strict=True):
        assert evaluate_condition(_cmp(kind, left, 2), ctx) is expected, (kind, left)
        # the same through a string parameter value, as SageMaker passes it
        assert compare(kind, str(left), 2.0) is expected, (kind, str(left))


def test_numeric_strings_compare_as_numbers_other_strings_as_text() -> None:
    assert compare("GreaterThan", "10", "9") is True  # as text "10" < "9"
    assert compare("LessThan", "apple", "banana") is True
    assert compare("Equals", "abc", "ABC") is False
    assert compare("Equals", True, "TRUE") is True  # booleans as 'true'/'false'
    assert compare("Equals", False, "true") is False


def test_not_inverts_and_and_needs_every_condition(ctx: EvalContext) -> None:
    assert evaluate_condition({"Type": "Not", "Expression": _cmp("Equals", 1, 2)}, ctx) is True
    both = {"Type": "And", "Conditions": [_cmp("Equals", 1, 1), _cmp("LessThan", 1, 2)]}
    assert evaluate_condition(both, ctx) is True
    assert evaluate_condition({"Type": "In", "QueryValue": "2", "Values": [1, 2]}, ctx) is True
