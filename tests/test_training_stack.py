"""The training stack: pipeline definition as synthesized, registry, role, triggers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.config import PlatformConfig
from mlops.constructs.training_pipeline import PROCESSING_DATABASE
from mlops.naming import feature_database_name
from mlops.pipeline_definition.validation import validate_definition
from mlops.rehearsal.assembly import Stack, load_assembly
from mlops.rehearsal.policy import Request, allows, role_statements
from tests.conftest import of_type, stack_templates, synth_app


def _stack(templates: dict[str, dict[str, Any]], path: str) -> dict[str, Any]:
    return templates[path]["Resources"]  # type: ignore[return-value]


# Deploy-time values, as plausible as SageMaker's request patterns require.
_PLACEHOLDERS = {
    "ExecutionRole": "arn:aws:iam::222222222222:role/execution",
    "FindIncumbentFunction": "arn:aws:lambda:us-east-1:222222222222:function:find-incumbent",
    "DataKey": "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-000000000000",
}


def _placeholder(token: dict[str, Any]) -> str:
    text = json.dumps(token)
    for fragment, value in _PLACEHOLDERS.items():
        if fragment in text:
            return value
    if "AWS::AccountId" in text:
        return "222222222222"
    raise AssertionError(f"no placeholder for {text}")


def _flatten(body: object) -> str:
    """Fn::Join of literals and tokens -> JSON text with tokens as plausible values."""
    if isinstance(body, str):
        return body
    separator, parts = body["Fn::Join"]  # type: ignore[index]
    return separator.join(part if isinstance(part, str) else _placeholder(part) for part in parts)


@pytest.fixture(scope="module")
def training(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return _stack(templates, "dev-us-east-1/Training")


@pytest.fixture(scope="module")
def definition(training: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = of_type(training, "AWS::SageMaker::Pipeline")
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    return json.loads(_flatten(body))  # type: ignore[no-any-return]


def test_training_lives_only_in_home_regions_of_training_environments(
    templates: dict[str, Any],
) -> None:
    assert sorted(p for p in templates if p.endswith("/Training")) == ["dev-us-east-1/Training"]


def test_synthesized_definition_validates_against_botocore(definition: dict[str, Any]) -> None:
    assert validate_definition(definition) == []
    names = [step["Name"] for step in definition["Steps"]]
    assert names[:2] == ["ValidateData", "Preprocess"]
    assert "Evaluate" in names and "CheckQuality" in names


def test_pipeline_is_named_from_config_and_uses_its_role(training: dict[str, Any]) -> None:
    (pipeline,) = of_type(training, "AWS::SageMaker::Pipeline")
    props = pipeline["Properties"]
    assert props["PipelineName"] == "flightdelay-dev-training"
    assert props["RoleArn"]["Fn::GetAtt"][1] == "Arn"


def test_dev_auto_approves_and_uses_the_configured_threshold(definition: dict[str, Any]) -> None:
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert params["ModelApprovalStatus"] == "Approved"
    assert params["AucThreshold"] == pytest.approx(0.65)


def test_registry_is_readable_by_the_serving_accounts(training: dict[str, Any]) -> None:
    (group,) = of_type(training, "AWS::SageMaker::ModelPackageGroup")
    props = group["Properties"]
    assert props["ModelPackageGroupName"] == "flightdelay-dev"
    (statement,) = props["ModelPackageGroupPolicy"]["Statement"]
    principals = statement["Principal"]["AWS"]
    rendered = json.dumps(principals)
    assert "333333333333" in rendered and "444444444444" in rendered
    assert "222222222222" not in rendered  # the owner needs no grant
    assert "sagemaker:CreateModelPackage" not in statement["Action"]


def _statements(resources: dict[str, Any], role_fragment: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy")
        if any(role_fragment in json.dumps(r) for r in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_execution_role_is_least_privilege(training: dict[str, Any]) -> None:
    statements = _statements(training, "ExecutionRole")
    actions = [
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    by_sid = {s.get("Sid"): s for s in statements}
    assert by_sid["PassOnlyToSageMaker"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    jobs = json.dumps(by_sid["RunThisPipelinesJobs"]["Resource"])
    assert "processing-job/pipelines-*" in jobs and "training-job/pipelines-*" in jobs
    images = json.dumps(by_sid["PullPinnedSageMakerImages"]["Resource"])
    assert (
        "repository/sagemaker-xgboost" in images and "repository/sagemaker-scikit-learn" in images
    )
    step_scripts = json.dumps(by_sid["ReadStepScripts"]["Resource"])
    assert step_scripts.endswith('.gz"')  # the one archive, not the whole assets bucket


def test_schedule_and_new_raw_data_start_the_pipeline(training: dict[str, Any]) -> None:
    rules = [
        r
        for r in of_type(training, "AWS::Events::Rule")
        if "aws.sagemaker" not in json.dumps(r["Properties"])  # FailureAlerts' own rule
    ]
    schedules = [r for r in rules if "ScheduleExpression" in r["Properties"]]
    assert [r["Properties"]["ScheduleExpression"] for r in schedules] == ["rate(7 days)"]
    (new_data,) = [r for r in rules if "EventPattern" in r["Properties"]]
    pattern = new_data["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == ["flightdelay-dev-data-222222222222-us-east-1"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "raw/"}]
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        assert "pipeline/flightdelay-dev-training" in json.dumps(target["Arn"])
        assert "RoleArn" in target


def test_find_incumbent_lambda_runs_on_the_latest_runtime_with_encrypted_logs(
    training: dict[str, Any],
) -> None:
    (function,) = of_type(training, "AWS::Lambda::Function")
    assert function["Properties"]["Runtime"] == "python3.14"
    (log_group,) = of_type(training, "AWS::Logs::LogGroup")
    assert "KmsKeyId" in log_group["Properties"]
    assert log_group["Properties"]["RetentionInDays"] == 90


def test_two_synths_give_identical_templates(tmp_path: Path, platform: Any) -> None:

    first = stack_templates(Path(synth_app(platform, tmp_path / "a").directory))
    second = stack_templates(Path(synth_app(platform, tmp_path / "b").directory))
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_step_cache_is_off_unless_configured(definition: dict[str, Any]) -> None:
    # Caching keys on input URIs, not data: a cached Preprocess would skip new raw data.
    assert all("CacheConfig" not in step for step in definition["Steps"])


def _join_requests(stack: Stack, database: str) -> tuple[list[Request], list[Request]]:
    """What Preprocess's Athena input makes the pipeline role do, and near misses it must not."""
    glue = f"arn:aws:glue:{stack.region}:{stack.account}"
    (workgroup,) = (w["Properties"]["Name"] for _, w in stack.of_type("AWS::Athena::WorkGroup"))
    allowed = [
        Request(
            "athena:StartQueryExecution",
            f"arn:aws:athena:{stack.region}:{stack.account}:workgroup/{workgroup}",
        ),
        *(
            Request("glue:GetTable", f"{glue}:table/{database}/{t}")
            for t in ("weather", "plane", "raw_flights")
        ),
        Request("glue:CreateDatabase", f"{glue}:catalog"),
        Request("glue:CreateDatabase", f"{glue}:database/{PROCESSING_DATABASE}"),
        Request("glue:CreateTable", f"{glue}:database/{PROCESSING_DATABASE}"),
        Request("glue:CreateTable", f"{glue}:table/{PROCESSING_DATABASE}/input_1_1a2b"),
        Request("glue:DeleteTable", f"{glue}:table/{PROCESSING_DATABASE}/input_1_1a2b"),
    ]
    refused = [
        Request(
            "athena:StartQueryExecution",
            f"arn:aws:athena:{stack.region}:{stack.account}:workgroup/primary",
        ),
        Request("glue:GetTable", f"{glue}:table/{database}/other"),
        Request("glue:CreateDatabase", f"{glue}:database/other"),
        Request("glue:CreateTable", f"{glue}:table/{database}/weather"),
        Request("glue:DeleteTable", f"{glue}:table/{database}/weather"),
    ]
    return allowed, refused


def test_the_pipeline_role_can_run_preprocess_athena_input_and_nothing_near_it(
    assembly_dir: Path, platform: PlatformConfig
) -> None:
    stack = next(
        s for s in load_assembly(assembly_dir).stacks if s.path == "dev-us-east-1/Training"
    )
    (role,) = (
        r
        for r, _ in stack.of_type("AWS::IAM::Role")
        if r.startswith("TrainingPipelineExecutionRole")
    )
    statements = role_statements(stack, role)
    database = feature_database_name(platform, platform.environments["dev"])
    allowed, refused = _join_requests(stack, database)
    assert [str(r) for r in allowed if not allows(statements, r)] == []
    assert [str(r) for r in refused if allows(statements, r)] == []
    # The check can fail: without the statements for SageMaker's temporary table (the job's
    # first Athena input would fail with AccessDenied on glue:CreateDatabase) it notices.
    without = [s for s in statements if not str(s.get("Sid", "")).startswith("StageTheQueryResult")]
    assert [r.action for r in allowed if not allows(without, r)] == [
        "glue:CreateDatabase",
        "glue:CreateDatabase",
        "glue:CreateTable",
        "glue:CreateTable",
        "glue:DeleteTable",
    ]
