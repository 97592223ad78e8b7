"""Validation of pipeline definitions against botocore's SageMaker request shapes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops.pipeline_definition.offline_join import OfflineTables
from mlops.pipeline_definition.training_pipeline import (
    TrainingPipelineSpec,
    TuningSpec,
    build_definition,
)
from mlops.pipeline_definition.validation import validate_definition, validate_request


def make_spec(**overrides: Any) -> TrainingPipelineSpec:
    values: dict[str, Any] = {
        "region": "us-east-1",
        "role_arn": "arn:aws:iam::123456789012:role/PipelineRole",
        "artifact_bucket": "artifacts-bucket",
        "code_uri": "s3://artifacts-bucket/assets/0123abcd.tar.gz",
        "model_package_group_name": "flight-delay",
        "offline_tables": OfflineTables(database="mlops_dev_features"),
        "athena_workgroup": "mlops-dev-training",
        "find_incumbent_function_arn": (
            "arn:aws:lambda:us-east-1:123456789012:function:find-incumbent"
        ),
        "hyperparameters": {"max_depth": 6, "eta": 0.1},
        "kms_key_arn": (
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ),
    }
    values.update(overrides)
    return TrainingPipelineSpec(**values)


def step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    for candidate in definition["Steps"]:
        if candidate["Name"] == name:
            return candidate
        if candidate["Type"] == "Condition":
            arguments = candidate["Arguments"]
            for nested in arguments["IfSteps"] + arguments["ElseSteps"]:
                if nested["Name"] == name:
                    return nested
    raise KeyError(name)


@pytest.mark.parametrize("tuning", [None, TuningSpec()], ids=["training", "tuning"])
@pytest.mark.parametrize("use_spot", [False, True], ids=["on-demand", "spot"])
def test_built_definitions_are_valid(tuning: TuningSpec | None, use_spot: bool) -> None:
    definition = build_definition(make_spec(tuning=tuning, use_spot=use_spot))
    assert validate_definition(definition) == []


def test_cdk_tokens_do_not_trip_the_literal_checks() -> None:
    token = "${Token[TOKEN.42]}"
    spec = make_spec(
        artifact_bucket=token,
        code_uri=f"s3://{token}/code.tar.gz",
        role_arn=token,
        kms_key_arn=None,
    )
    assert validate_definition(build_definition(spec)) == []


def test_misspelt_field_is_reported_with_its_path() -> None:
    definition = build_definition(make_spec())
    inputs = step(definition, "Evaluate")["Arguments"]["ProcessingInputs"]
    inputs[0]["ProcessingInput"] = inputs[0].pop("S3Input")
    problems = validate_definition(definition)
    assert problems, "a misspelt member must be reported"
    assert any(
        p.startswith("Evaluate: ") and "ProcessingInputs[0]" in p and '"ProcessingInput"' in p
        for p in problems
    ), problems


def test_the_athena_input_is_checked_against_the_service_model() -> None:
    """Preprocess's DatasetDefinition is validated like every other member: a misspelt
    Athena field is reported with its path (and the real one passes: see above)."""
    definition = build_definition(make_spec())
    inputs = step(definition, "Preprocess")["Arguments"]["ProcessingInputs"]
    athena = inputs[0]["DatasetDefinition"]["AthenaDatasetDefinition"]
    athena["Query"] = athena.pop("QueryString")
    problems = validate_definition(definition)
    assert any(
        p.startswith("Preprocess: ")
        and "DatasetDefinition.AthenaDatasetDefinition" in p
        and '"Query"' in p
        for p in problems
    ), problems


def test_misspelt_top_level_argument_is_reported() -> None:
    definition = build_definition(make_spec())
    arguments = step(definition, "Evaluate")["Arguments"]
    arguments["ProcessingInput"] = arguments.pop("ProcessingInputs")
    problems = validate_definition(definition)
    assert any(p.startswith("Evaluate: ") and '"ProcessingInput"' in p for p in problems), problems


def test_wrong_type_is_reported_with_its_path() -> None:
    definition = build_definition(make_spec())
    cluster = step(definition, "Evaluate")["Arguments"]["ProcessingResources"]["ClusterConfig"]
    cluster["InstanceCount"] = "two"
    problems = validate_definition(definition)
    assert any(
        p.startswith("Evaluate: ")
        and "ProcessingResources.ClusterConfig.InstanceCount" in p
        and "two" in p
        for p in problems
    ), problems


def test_parameter_of_the_wrong_type_is_reported() -> None:
    definition = build_definition(make_spec())
    cluster = step(definition, "Preprocess")["Arguments"]["ProcessingResources"]["ClusterConfig"]
    cluster["InstanceCount"] = {"Get": "Parameters.ProcessingInstanceType"}
    problems = validate_definition(definition)
    assert problems == [
        "Preprocess: Arguments.ProcessingResources.ClusterConfig.InstanceCount: parameter "
        "Parameters.ProcessingInstanceType is a String, a integer is expected"
    ]


def test_literal_enum_length_and_pattern_are_checked() -> None:
    definition = build_definition(make_spec())
    train = step(definition, "Train")["Arguments"]
    train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] = "S3Prefx"
    train["OutputDataConfig"]["S3OutputPath"] = "bucket/models"
    entrypoint = step(definition, "ValidateData")["Arguments"]["AppSpecification"]
    entrypoint["ContainerEntrypoint"][2] = "x" * 300
    problems = validate_definition(definition)
    joined = "\n".join(problems)
    assert (
        "InputDataConfig[0].DataSource.S3DataSource.S3DataType: 'S3Prefx' is not one of" in joined
    )
    assert "OutputDataConfig.S3OutputPath: 'bucket/models' does not match" in joined
    assert "ContainerEntrypoint[2]: 300 characters, at most 256 allowed" in joined


def test_expression_standing_for_a_structure_is_reported() -> None:
    definition = build_definition(make_spec())
    step(definition, "Train")["Arguments"]["ResourceConfig"] = {"Get": "Parameters.InputDataUrl"}
    problems = validate_definition(definition)
    assert any("ResourceConfig: an expression cannot stand for a structure" in p for p in problems)


def test_references_to_missing_steps_parameters_and_property_files() -> None:
    definition = build_definition(make_spec())
    evaluate = step(definition, "Evaluate")
    evaluate["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"] = {
        "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
    }
    evaluate["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = {
        "Get": "Parameters.ModelUrl"
    }
    condition = step(definition, "CheckQuality")["Arguments"]["Conditions"][0]
    condition["LeftValue"]["Std:JsonGet"]["PropertyFile"] = {
        "Get": "Steps.Evaluate.PropertyFiles.Report"
    }
    problems = validate_definition(definition)
    assert any("no step named 'Prepare'" in p for p in problems), problems
    assert any("no parameter named 'ModelUrl'" in p for p in problems), problems
    assert any(
        p.startswith("CheckQuality: ") and "has no such property file" in p for p in problems
    ), problems


def test_reference_to_a_missing_output_is_reported() -> None:
    definition = build_definition(make_spec())
    train = step(definition, "Train")["Arguments"]
    train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = {
        "Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['training'].S3Output.S3Uri"
    }
    problems = validate_definition(definition)
    assert len(problems) == 1, problems
    assert problems[0].startswith("Train: Arguments.InputDataConfig[0].DataSource")
    assert "step Preprocess has no such output" in problems[0]


def test_duplicate_step_names_and_unknown_depends_on() -> None:
    definition = build_definition(make_spec())
    duplicate = copy.deepcopy(step(definition, "ValidateData"))
    definition["Steps"].append(duplicate)
    step(definition, "Preprocess")["DependsOn"] = ["Validate"]
    problems = validate_definition(definition)
    assert any("step name 'ValidateData' is used more than once" in p for p in problems)
    assert any("DependsOn: no step named 'Validate'" in p for p in problems)


def test_sagemaker_retry_types_only_on_job_steps() -> None:
    definition = build_definition(make_spec())
    register = step(definition, "RegisterModel")
    register["RetryPolicies"].append(
        {"ExceptionType": ["SageMaker.CAPACITY_ERROR"], "MaxAttempts": 2, "IntervalSeconds": 1}
    )
    problems = validate_definition(definition)
    assert problems == [
        "RegisterModel: RetryPolicies[1].ExceptionType: SageMaker.CAPACITY_ERROR only applies "
        "to job steps"
    ]


def test_bad_condition_and_parameter_default() -> None:
    definition = build_definition(make_spec())
    step(definition, "CheckQuality")["Arguments"]["Conditions"].append(
        {"Type": "And", "Conditions": []}
    )
    definition["Parameters"][2]["DefaultValue"] = "1"  # ProcessingInstanceCount is an Integer
    problems = validate_definition(definition)
    assert any("Conditions[2].Type 'And' is not one of" in p for p in problems), problems
    assert any(
        "DefaultValue '1' of ProcessingInstanceCount is not a Integer" in p for p in problems
    )


def test_validate_request_on_its_own() -> None:
    assert validate_request("CreateModelPackageInput", {"ModelPackageGroupName": "g"}) == []
    problems = validate_request("CreateModelPackageInput", {"ModelApprovalStatus": "Approve"})
    assert problems == [
        "Arguments.ModelApprovalStatus: 'Approve' is not one of Approved, Rejected, "
        "PendingManualApproval"
    ]
