"""The Lambdas run against the permissions they will really have: each main code path runs in
moto as its role, with the policy documents of the synthesized template (intrinsics resolved
for the stage's account) and IAM enforced; a missing or too-narrow permission fails here.

Checked here: stage_model (copy, already present; S3 resources enforced by moto itself) and
find_incumbent (incumbent found, no incumbent; SageMaker resources judged by the rehearsal's
evaluator on the recorded calls) and retrain_gate (assume the hub's starter role; start the
pipeline, or only look when rate-limited; one account at a time, switched between the two).
The rollback path (describe, update the endpoint, reject the package, notify) cannot run in
moto (no UpdateEndpoint): botocore's Stubber answers and only the evaluator judges its calls."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from helpers import load_lambda_module
from moto import mock_aws

from mlops.rehearsal.assembly import Assembly, Stack, load_assembly
from mlops.rehearsal.policy import role_statements
from tests.lambda_iam import CallLog, recording, run_as_role


def _load(folder: str, name: str) -> ModuleType:
    return load_lambda_module(folder, name, f"iam_{folder}_{name}")


staging = _load("stage_model", "staging")
find_incumbent = _load("find_incumbent", "handler")


@pytest.fixture(scope="module")
def rehearsal(assembly_dir: Path) -> Assembly:
    return load_assembly(assembly_dir)


def _function_role(stack: Stack, function_prefix: str) -> str:
    (function,) = [
        r for k, r in stack.of_type("AWS::Lambda::Function") if k.startswith(function_prefix)
    ]
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def _without(stack: Stack, sid: str) -> Stack:
    """The stack with one statement taken out of its IAM policies."""
    template = copy.deepcopy(stack.template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
    changed = Stack(
        stack.name, stack.path, stack.account, stack.region, template, stack.dependencies
    )
    changed.assembly = stack.assembly
    return changed


@pytest.fixture()
def account(rehearsal: Assembly, request: pytest.FixtureRequest) -> Iterator[str]:
    stack = rehearsal.by_name(request.param)
    with mock.patch.dict(os.environ, {"MOTO_ACCOUNT_ID": stack.account}), mock_aws():
        yield request.param


# --- stage_model ----------------------------------------------------------------------------

ARTIFACT = b"model.tar.gz bytes"


def _staging_request(stack: Stack) -> Any:
    (artifact, *_) = [
        stack.resolve(r["Properties"]) for _, r in stack.of_type("Custom::ModelArtifact")
    ]
    hub = boto3.client("s3", region_name=artifact["SourceRegion"])
    hub.create_bucket(Bucket=artifact["SourceBucket"])
    hub.put_object(Bucket=artifact["SourceBucket"], Key=artifact["Key"], Body=ARTIFACT)
    boto3.client("s3", region_name=stack.region).create_bucket(Bucket=artifact["DestinationBucket"])
    key = boto3.client("kms", region_name=stack.region).create_key()["KeyMetadata"]["Arn"]
    return staging.StagingRequest(
        source_bucket=artifact["SourceBucket"],
        destination_bucket=artifact["DestinationBucket"],
        key=artifact["Key"],
        # The synthesized key (what the role may write), holding this test's bytes.
        staged_key=artifact["StagedKey"],
        sha256=hashlib.sha256(ARTIFACT).hexdigest(),
        destination_kms_key=key,
    ), artifact["SourceRegion"]


def _stage(request: Any, source_region: str, region: str) -> Any:
    return staging.stage_model(
        boto3.client("s3", region_name=source_region),
        boto3.client("s3", region_name=region),
        request,
    )


@pytest.mark.parametrize("account", ["prod-us-east-1-Serving"], indirect=True)
def test_stager_copies_and_finds_the_artifact_under_its_policy(
    rehearsal: Assembly, account: str
) -> None:
    stack = rehearsal.by_name(account)
    role = _function_role(stack, "ModelStagingStager")
    request, source_region = _staging_request(stack)

    def copy_then_find() -> list[str]:
        return [_stage(request, source_region, stack.region)["Action"] for _ in range(2)]

    result, log = run_as_role(stack, role, stack.region, copy_then_find)
    assert result == ["copied-from-hub", "present"]
    assert log.denied() == []
    assert {action for action, _ in log.calls} == {"s3:GetObject", "s3:PutObject"}


@pytest.mark.parametrize("account", ["prod-us-east-1-Serving"], indirect=True)
def test_stager_without_its_write_grant_is_denied(rehearsal: Assembly, account: str) -> None:
    stack = _without(rehearsal.by_name(account), "WriteAndCheckTheStagedCopy")
    role = _function_role(stack, "ModelStagingStager")
    request, source_region = _staging_request(stack)
    result, log = run_as_role(
        stack, role, stack.region, lambda: _stage(request, source_region, stack.region)
    )
    assert "AccessDenied" in str(result)  # moto's own enforcement refused the call
    assert log.denied()  # and the evaluator agrees


# --- find_incumbent -------------------------------------------------------------------------


def _group(stack: Stack) -> str:
    (group,) = [
        stack.resolve(r["Properties"])
        for _, r in stack.of_type("AWS::SageMaker::ModelPackageGroup")
    ]
    return str(group["ModelPackageGroupName"])


def _register(group: str, region: str) -> None:
    sagemaker = boto3.client("sagemaker", region_name=region)
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "image:1", "ModelDataUrl": "s3://artifacts/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )


@pytest.mark.parametrize("account", ["dev-us-east-1-Training"], indirect=True)
@pytest.mark.parametrize("registered", [True, False], ids=["incumbent", "none-yet"])
def test_find_incumbent_reads_the_registry_under_its_policy(
    rehearsal: Assembly, account: str, registered: bool
) -> None:
    stack = rehearsal.by_name(account)
    group = _group(stack)
    if registered:
        _register(group, stack.region)
    else:
        boto3.client("sagemaker", region_name=stack.region).create_model_package_group(
            ModelPackageGroupName=group
        )
    role = _function_role(stack, "TrainingPipelineFindIncumbent")

    def lookup() -> Any:
        return find_incumbent.latest_approved_package(
            boto3.client("sagemaker", region_name=stack.region), group
        )

    result, log = run_as_role(stack, role, stack.region, lookup)
    assert not isinstance(result, Exception), result
    assert (result is not None) is registered
    assert log.denied() == []
    expected = {"sagemaker:ListModelPackages"} | (
        {"sagemaker:DescribeModelPackage"} if registered else set()
    )
    assert {action for action, _ in log.calls} == expected


@pytest.mark.parametrize("account", ["dev-us-east-1-Training"], indirect=True)
def test_find_incumbent_on_another_group_is_refused_by_the_evaluator(
    rehearsal: Assembly, account: str
) -> None:
    stack = rehearsal.by_name(account)
    _register("someone-elses-group", stack.region)
    role = _function_role(stack, "TrainingPipelineFindIncumbent")

    def lookup() -> Any:
        client = boto3.client("sagemaker", region_name=stack.region)
        return find_incumbent.latest_approved_package(client, "someone-elses-group")

    _, log = run_as_role(stack, role, stack.region, lookup)
    # moto cannot scope SageMaker resources; the evaluator does, on the recorded calls.
    assert any("someone-elses-group" in denied for denied in log.denied())


# --- retrain_gate: the gate role assumes the hub's starter role, which starts the pipeline ---

gate = _load("retrain_gate", "gate_logic")
ALARM = {"region": "us-east-1", "detail": {"alarmName": "drift", "state": {"value": "ALARM"}}}


def _gate_config(stack: Stack) -> Any:
    (function,) = [
        r for k, r in stack.of_type("AWS::Lambda::Function") if k.startswith("RetrainGateFunction")
    ]
    return gate.GateConfig.from_env(
        stack.resolve(function["Properties"]["Environment"])["Variables"]
    )


def _role_named(stack: Stack, arn: str) -> str:
    (role,) = [k for k, _ in stack.of_type("AWS::IAM::Role") if stack.arn_of(k) == arn]
    return role


@pytest.mark.parametrize("recent_run", [False, True], ids=["starts", "rate-limited"])
def test_retrain_gate_assumes_the_starter_role_and_starts_the_pipeline(
    rehearsal: Assembly, recent_run: bool
) -> None:
    monitoring = rehearsal.by_name("prod-us-east-1-Monitoring")
    training = rehearsal.by_name("dev-us-east-1-Training")
    config = _gate_config(monitoring)
    with mock_aws():
        with mock.patch.dict(os.environ, {"MOTO_ACCOUNT_ID": monitoring.account}):
            role = _function_role(monitoring, "RetrainGateFunction")
            credentials, log = run_as_role(
                monitoring,
                role,
                monitoring.region,
                lambda: gate.assume_starter_role(
                    boto3.client("sts", region_name="us-east-1"), config, "gate"
                ),
            )
            assert isinstance(credentials, dict), credentials
            assert log.calls == [("sts:AssumeRole", config.starter_role_arn)]
            assert log.denied() == []
        with mock.patch.dict(os.environ, {"MOTO_ACCOUNT_ID": training.account}):
            sagemaker = boto3.client("sagemaker", region_name=config.pipeline_region)
            sagemaker.create_pipeline(
                PipelineName=config.pipeline_name,
                PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
                RoleArn=f"arn:aws:iam::{training.account}:role/pipeline",
            )
            # The gate's clock: a minute after moto's own execution timestamp, or any time.
            now = datetime(2026, 6, 1, 12, tzinfo=UTC)
            if recent_run:
                sagemaker.start_pipeline_execution(PipelineName=config.pipeline_name)
                (run,) = sagemaker.list_pipeline_executions(PipelineName=config.pipeline_name)[
                    "PipelineExecutionSummaries"
                ]
                now = run["StartTime"] + timedelta(minutes=1)
            starter = _role_named(training, config.starter_role_arn)

            def start() -> Any:
                client = boto3.client("sagemaker", region_name=config.pipeline_region)
                return gate.handle_alarm_event(ALARM, config, client, now)

            result, log = run_as_role(training, starter, config.pipeline_region, start)
    assert not isinstance(result, Exception), result
    assert result["started"] is not recent_run
    assert log.denied() == []
    assert [a for a, _ in log.calls] == ["sagemaker:ListPipelineExecutions"] + (
        [] if recent_run else ["sagemaker:StartPipelineExecution"]
    )


# Each statement the gate needs to judge a refused run, and the call it allows.
JUDGING_A_REFUSAL = {
    "ReadThisPipelinesExecutionSteps": "sagemaker:ListPipelineExecutionSteps",
    "ReadThisPipelinesCurrentDefinition": "sagemaker:DescribePipeline",
    "FindThisGroupsApprovedIncumbent": "sagemaker:ListModelPackages",
}


@pytest.mark.parametrize("drop", [None, *JUDGING_A_REFUSAL])
def test_the_starter_role_may_judge_whether_a_refused_run_holds(
    rehearsal: Assembly, drop: str | None
) -> None:
    """moto has none of these pipeline calls: Stubber answers (a run refused at the Fail step
    that still holds), the evaluator judges every call on its resource."""
    monitoring = rehearsal.by_name("prod-us-east-1-Monitoring")
    training = rehearsal.by_name("dev-us-east-1-Training")
    config = _gate_config(monitoring)
    starter = _role_named(training, config.starter_role_arn)
    if drop:
        training = _without(training, drop)
    region, account = config.pipeline_region, training.account
    arn = f"arn:aws:sagemaker:{region}:{account}:pipeline/{config.pipeline_name}/execution/abc123"
    package = f"arn:aws:sagemaker:{region}:{account}:model-package/{config.model_package_group}/4"
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    failed = {
        "PipelineExecutionArn": arn,
        "StartTime": now - timedelta(days=10),
        "PipelineExecutionStatus": "Failed",
    }
    steps = [
        {"StepName": "QualityGateFailed", "Metadata": {"Fail": {"ErrorMessage": "AUC"}}},
        {
            "StepName": "FindIncumbent",
            "Metadata": {
                "Lambda": {"OutputParameters": [{"Name": "IncumbentModelPackageArn",
                                                 "Value": package}]}
            },
        },
    ]  # fmt: skip
    log = CallLog(account, role_statements(training, starter))
    with recording(log):
        sagemaker = boto3.client("sagemaker", region_name=region)
        with Stubber(sagemaker) as stub:
            stub.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [failed]})
            stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps})
            stub.add_response("describe_pipeline", {"PipelineDefinition": '{"Parameters": []}'})
            stub.add_response("list_pipeline_parameters_for_execution", {"PipelineParameters": []})
            stub.add_response("describe_pipeline_execution", {"PipelineVersionId": 2})
            stub.add_response("list_pipeline_versions", {"PipelineVersionSummaries": [
                {"PipelineVersionId": 2}]})  # fmt: skip
            stub.add_response("list_model_packages", {"ModelPackageSummaryList": [
                {"ModelPackageArn": package, "CreationTime": now,
                 "ModelPackageStatus": "Completed"}]})  # fmt: skip
            result = gate.handle_alarm_event(ALARM, config, sagemaker, now)
    assert result["started"] is False and result["waiting_for_new_data"] is True, result
    pipeline = f"arn:aws:sagemaker:{region}:{account}:pipeline/{config.pipeline_name}"
    group = f"arn:aws:sagemaker:{region}:{account}:model-package-group/{config.model_package_group}"
    assert log.calls[1:] == [
        ("sagemaker:ListPipelineExecutionSteps", arn),
        ("sagemaker:DescribePipeline", pipeline),
        ("sagemaker:ListPipelineParametersForExecution", arn),
        ("sagemaker:DescribePipelineExecution", arn),
        ("sagemaker:ListPipelineVersions", pipeline),
        ("sagemaker:ListModelPackages", group),
    ]
    denied = log.denied()
    if drop is None:
        assert denied == []
    else:
        assert any(d.startswith(JUDGING_A_REFUSAL[drop]) for d in denied), denied


# --- rollback: no moto (it has no UpdateEndpoint); Stubber answers, the evaluator judges ------

rollback = _load("rollback", "rollback_logic")


def _rollback_world(stack: Stack) -> tuple[Any, str, dict[str, Any]]:
    (function,) = [
        r for k, r in stack.of_type("AWS::Lambda::Function") if k.startswith("RollbackFunction")
    ]
    env = stack.resolve(function["Properties"]["Environment"])["Variables"]
    config = rollback.RollbackConfig.from_env(env)
    alarm = sorted(config.alarm_names)[0]
    event = {
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "region": stack.region,
        "resources": [f"arn:aws:cloudwatch:{stack.region}:{stack.account}:alarm:{alarm}"],
        "detail": {
            "alarmName": alarm,
            "state": {"value": "ALARM", "reason": "5xx", "timestamp": "2026-11-26T10:04:40Z"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-26T09:51:40Z"},
        },
    }
    return config, str(function["Properties"]["Role"]["Fn::GetAtt"][0]), event


def _rollback_with_stubs(config: Any, event: dict[str, Any], region: str) -> Any:
    sagemaker = boto3.client("sagemaker", region_name=region)
    sns = boto3.client("sns", region_name=region)
    registry = boto3.client("sagemaker", region_name=config.current_model_package_arn.split(":")[3])
    endpoint = {
        "EndpointName": config.endpoint_name,
        "EndpointArn": f"arn:aws:sagemaker:{region}:1:endpoint/{config.endpoint_name}",
        "EndpointConfigName": config.current_config_name,
        "EndpointStatus": "InService",
        "CreationTime": "2026-11-01T00:00:00Z",
        "LastModifiedTime": "2026-11-01T00:00:00Z",
    }
    package = {
        "ModelPackageName": "p",
        "ModelPackageArn": config.current_model_package_arn,
        "CreationTime": "2026-11-01T00:00:00Z",
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
    }
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    alarm = {
        "AlarmName": event["detail"]["alarmName"],
        "StateValue": "ALARM",
        "StateTransitionedTimestamp": event["detail"]["state"]["timestamp"],
    }
    with (
        Stubber(sagemaker) as sm,
        Stubber(sns) as topic,
        Stubber(registry) as reg,
        Stubber(cloudwatch) as cw,
    ):
        cw.add_response("describe_alarms", {"MetricAlarms": [alarm]})
        sm.add_response("describe_endpoint", endpoint)
        sm.add_response("update_endpoint", {"EndpointArn": endpoint["EndpointArn"]})
        reg.add_response("describe_model_package", package)
        # Reject, notify, then record the notification on the package.
        reg.add_response("update_model_package", {"ModelPackageArn": package["ModelPackageArn"]})
        topic.add_response("publish", {"MessageId": "1"})
        reg.add_response("update_model_package", {"ModelPackageArn": package["ModelPackageArn"]})
        return rollback.handle_alarm_event(event, config, sagemaker, sns, cloudwatch, registry)


DENIED_WITHOUT = {
    "RollThisEndpointBack": "sagemaker:UpdateEndpoint",
    "ReadTheCurrentStateOfTheseAlarms": "cloudwatch:DescribeAlarms",
}


@pytest.mark.parametrize(
    "drop",
    [None, "RollThisEndpointBack", "ReadTheCurrentStateOfTheseAlarms"],
    ids=["policy", "without-update", "without-alarm-state"],
)
def test_rollback_calls_are_allowed_by_its_policy(rehearsal: Assembly, drop: str | None) -> None:
    stack = rehearsal.by_name("prod-us-east-1-Serving")
    if drop is not None:
        stack = _without(stack, drop)
    config, role, event = _rollback_world(stack)
    log = CallLog(stack.account, role_statements(stack, role))
    with recording(log):
        result = _rollback_with_stubs(config, event, stack.region)
    assert result["action"] == "rolled_back"
    actions = {action for action, _ in log.calls}
    assert actions == {
        "cloudwatch:DescribeAlarms",
        "sagemaker:DescribeEndpoint",
        "sagemaker:UpdateEndpoint",
        "sagemaker:DescribeModelPackage",
        "sagemaker:UpdateModelPackage",
        "sns:Publish",
    }
    if drop is None:
        assert log.denied() == []
    else:
        assert any(d.startswith(DENIED_WITHOUT[drop]) for d in log.denied())


# --- feature_ingestion ----------------------------------------------------------------------

ingestion_handler = _load("feature_ingestion", "handler")
WEATHER_CSV = (
    "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour\n"
    "EWR,2013,1,1,1,39.02,26.06,59.37,270,10.35702,NA,0,1012,10,2013-01-01T06:00:00Z\n"
)


def _ingestion_setup(stack: Stack) -> tuple[str, dict[str, str], str]:
    (function,) = [
        r
        for k, r in stack.of_type("AWS::Lambda::Function")
        if k.startswith("FeatureIngestionHandler")
    ]
    env = stack.resolve(function["Properties"]["Environment"]["Variables"])
    (bucket,) = [
        stack.resolve(r["Properties"])["BucketName"]
        for _, r in stack.of_type("AWS::S3::Bucket")
        if "-data-" in str(stack.resolve(r["Properties"]).get("BucketName", ""))
    ]
    s3 = boto3.client("s3", region_name=stack.region)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": stack.region})
    s3.put_object(Bucket=bucket, Key="raw/weather.csv", Body=WEATHER_CSV.encode())
    return bucket, env, _function_role(stack, "FeatureIngestionHandler")


@pytest.mark.parametrize("account", ["prod-eu-west-1-Data"], indirect=True)
def test_feature_ingestion_reads_raw_keeps_its_ledger_and_puts_records_under_its_policy(
    rehearsal: Assembly, account: str
) -> None:
    stack = rehearsal.by_name(account)
    bucket, env, role = _ingestion_setup(stack)
    event = {"detail": {"bucket": {"name": bucket}, "object": {"key": "raw/weather.csv"}}}

    def ingest_twice() -> tuple[bool, bool]:
        s3 = boto3.client("s3", region_name=stack.region)
        store = boto3.client("sagemaker-featurestore-runtime", region_name=stack.region)
        with Stubber(store) as stub:  # moto has no Feature Store runtime: the evaluator judges
            stub.add_response("put_record", {}, None)
            first = ingestion_handler.answer_event(event, s3, store, env)
            second = ingestion_handler.answer_event(event, s3, store, env)
        return first["ingested"], second["skipped"]

    result, log = run_as_role(stack, role, stack.region, ingest_twice)
    assert result == (True, True)
    assert log.denied() == []
    assert {action for action, _ in log.calls} == {
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "sagemaker:PutRecord",
    }
    assert (
        "sagemaker:PutRecord",
        f"arn:aws:sagemaker:eu-west-1:{stack.account}:feature-group/flightdelay-prod-weather",
    ) in log.calls


# --- inference_api --------------------------------------------------------------------------

inference_handler = _load("inference_api", "handler")


@pytest.mark.parametrize("account", ["prod-ap-southeast-1-Serving"], indirect=True)
def test_inference_api_reads_two_groups_and_invokes_its_endpoint_under_its_policy(
    rehearsal: Assembly, account: str
) -> None:
    stack = rehearsal.by_name(account)
    (function,) = [
        r for k, r in stack.of_type("AWS::Lambda::Function") if k.startswith("InferenceApiHandler")
    ]
    env = stack.resolve(function["Properties"]["Environment"]["Variables"])
    role = _function_role(stack, "InferenceApiHandler")
    event = {"httpMethod": "GET", "resource": "/health", "body": None}

    def check_health() -> int:
        store = boto3.client("sagemaker-featurestore-runtime", region_name=stack.region)
        runtime = boto3.client("sagemaker-runtime", region_name=stack.region)
        with Stubber(store) as store_stub, Stubber(runtime) as runtime_stub:
            store_stub.add_response(
                "batch_get_record", {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}
            )
            body = io.BytesIO(b"0.5\n")
            runtime_stub.add_response(
                "invoke_endpoint",
                {"Body": StreamingBody(body, 4), "ContentType": "text/csv"},
            )
            return int(inference_handler.answer_event(event, store, runtime, env)["statusCode"])

    result, log = run_as_role(stack, role, stack.region, check_health)
    assert result == 200
    assert log.denied() == []
    prefix = f"arn:aws:sagemaker:ap-southeast-1:{stack.account}"
    assert sorted(log.calls) == [
        ("sagemaker:BatchGetRecord", f"{prefix}:feature-group/flightdelay-prod-plane"),
        ("sagemaker:BatchGetRecord", f"{prefix}:feature-group/flightdelay-prod-weather"),
        ("sagemaker:InvokeEndpoint", f"{prefix}:endpoint/flightdelay-prod"),
    ]
