"""Monitoring stacks: the scheduled drift/model-quality job, its roles, the alarms, and the
retrain loop to the hub's training pipeline (the whole app, synthesized once per session)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.app_builder import AppOptions
from mlops.config import PlatformConfig
from mlops.constructs.drift_monitor import CREATE_PROCESSING_JOB, schedule_period
from mlops.release_manifest import EnvironmentRelease
from mlops.stacks.monitoring_stack import baseline_key
from tests.conftest import default_releases, stack_templates, synth_app

# Dev serves serverless: no data capture, so no monitoring (and no retrain gate).
SERVING_STAGES = [
    "staging-us-east-1",
    "staging-eu-west-1",
    "prod-us-east-1",
    "prod-eu-west-1",
    "prod-ap-southeast-1",
]
PERIOD_S = {"dev": 86400, "staging": 86400, "prod": 6 * 3600}
MIN_HOURS = {"dev": 24, "staging": 24, "prod": 72}


def _resources(templates: dict[str, Any], stage: str, stack: str = "Monitoring") -> dict[str, Any]:
    return templates[f"{stage}/{stack}"]["Resources"]


def _one(resources: dict[str, Any], kind: str, contains: str = "") -> tuple[str, dict[str, Any]]:
    (found,) = [(k, r) for k, r in resources.items() if r["Type"] == kind and contains in k]
    return found


def _flatten(value: Any) -> str:
    """A Fn::Join'ed string with its tokens shown as <TOKEN> (enough to parse the JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flatten(p) for p in parts)
    return "<TOKEN>"


def _statements(resources: dict[str, Any], role_id_part: str) -> list[dict[str, Any]]:
    _, policy = _one(resources, "AWS::IAM::Policy", role_id_part)
    return policy["Properties"]["PolicyDocument"]["Statement"]


@pytest.mark.parametrize("stage", SERVING_STAGES)
def test_the_job_runs_on_the_drift_schedule_with_a_unique_name(
    templates: dict[str, Any], stage: str
) -> None:
    env, region = stage.split("-", 1)
    _, schedule = _one(_resources(templates, stage), "AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {"dev": "rate(1 day)", "staging": "rate(1 day)"}.get(
        env, "rate(6 hours)"
    )
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["Target"]["Arn"] == CREATE_PROCESSING_JOB
    request = json.loads(_flatten(props["Target"]["Input"]))
    assert request["ProcessingJobName"] == f"flightdelay-{env}-monitor-<aws.scheduler.execution-id>"
    args = request["AppSpecification"]["ContainerArguments"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    account = {"dev": "222222222222", "staging": "333333333333", "prod": "444444444444"}[env]
    assert flags["--bucket"] == f"flightdelay-{env}-data-{account}-{region}"
    assert flags["--scheduled-time"] == "<aws.scheduler.scheduled-time>"
    assert int(flags["--window-hours"]) * 3600 == PERIOD_S[env]
    assert request["AppSpecification"]["ContainerEntrypoint"][-1] == "monitor.py"
    assert "sagemaker-scikit-learn" in request["AppSpecification"]["ImageUri"]
    assert region in request["AppSpecification"]["ImageUri"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
    # The baseline travels inside the served model.tar.gz: the stage's verified copy.
    assert inputs["baseline"].startswith(
        f"s3://flightdelay-{env}-models-{account}-{region}/models/sha256/"
    )
    assert inputs["baseline"].endswith("/model.tar.gz")
    assert request["ProcessingOutputConfig"]["KmsKeyId"] == "<TOKEN>"


def test_the_scheduler_role_only_starts_monitoring_jobs(templates: dict[str, Any]) -> None:
    resources = _resources(templates, "prod-eu-west-1")
    _, role = _one(resources, "AWS::IAM::Role", "SchedulerRole")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "444444444444"}}
    by_sid = {s["Sid"]: s for s in _statements(resources, "SchedulerRole")}
    assert set(by_sid) == {"StartMonitoringJobs", "PassTheJobRole"}
    assert by_sid["StartMonitoringJobs"]["Action"] == "sagemaker:CreateProcessingJob"
    assert by_sid["StartMonitoringJobs"]["Resource"] == (
        "arn:aws:sagemaker:eu-west-1:444444444444:processing-job/flightdelay-prod-monitor-*"
    )
    assert by_sid["PassTheJobRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_the_job_role_is_least_privilege(templates: dict[str, Any]) -> None:
    statements = _statements(_resources(templates, "prod-eu-west-1"), "JobRole")
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                               else s["Action"])}  # fmt: skip
    assert not any(a.endswith("*") and not a.startswith("kms:") for a in actions)
    assert "s3:DeleteObject" not in actions
    by_sid = {s.get("Sid"): s for s in statements}
    assert by_sid["PublishMonitoringMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "flightdelay/monitoring"}
    }
    assert by_sid["ListTheWindow"]["Condition"] == {
        "StringLike": {
            "s3:prefix": ["datacapture/flightdelay-prod/*", "ground-truth/flightdelay-prod/*"]
        }
    }
    bucket = "arn:aws:s3:::flightdelay-prod-data-444444444444-eu-west-1"
    assert by_sid["ReadCaptureAndLabels"]["Resource"] == [
        f"{bucket}/datacapture/flightdelay-prod/*",
        f"{bucket}/ground-truth/flightdelay-prod/*",
    ]
    assert by_sid["WriteReports"]["Resource"] == f"{bucket}/monitoring/flightdelay-prod/*"
    assert by_sid["PullPinnedSageMakerImages"]["Resource"] == (
        "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn"
    )
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert {s["Sid"] for s in wildcard} == {
        "PublishMonitoringMetrics",
        "EcrLoginHasNoResourceScope",
    }


@pytest.mark.parametrize("stage", SERVING_STAGES)
def test_drift_must_persist_two_runs_before_the_alarm(
    templates: dict[str, Any], stage: str
) -> None:
    env = stage.split("-")[0]
    resources = _resources(templates, stage)
    _, drift = _one(resources, "AWS::CloudWatch::Alarm", "DriftPersists")
    props = drift["Properties"]
    # The calibrated default: ground-truth AUC below 0.70 in 5 of 7 runs.
    assert (props["Namespace"], props["MetricName"]) == ("flightdelay/monitoring", "ModelAUC")
    assert props["Dimensions"] == [{"Name": "EndpointName", "Value": f"flightdelay-{env}"}]
    assert props["Period"] == PERIOD_S[env]
    assert props["Statistic"] == "Minimum"  # the worst run of the period
    assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (7, 5)
    assert props["Threshold"] == 0.70
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["TreatMissingData"] == "ignore"
    _, auc = _one(resources, "AWS::CloudWatch::Alarm", "ModelAucLow")
    assert auc["Properties"]["MetricName"] == "ModelAUC"
    assert auc["Properties"]["Threshold"] == 0.65  # dev's training auc_threshold
    assert auc["Properties"]["ComparisonOperator"] == "LessThanThreshold"


@pytest.mark.parametrize("stage", SERVING_STAGES)
def test_the_drift_alarm_invokes_the_retrain_gate(templates: dict[str, Any], stage: str) -> None:
    env, region = stage.split("-", 1)
    resources = _resources(templates, stage)
    alarm_id, _ = _one(resources, "AWS::CloudWatch::Alarm", "DriftPersists")
    _, rule = _one(resources, "AWS::Events::Rule", "OnDriftAlarm")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["resources"] == [{"Fn::GetAtt": [alarm_id, "Arn"]}]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
    function_id, function = _one(resources, "AWS::Lambda::Function", "RetrainGate")
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["PIPELINE_NAME"] == "flightdelay-dev-training"
    assert variables["PIPELINE_REGION"] == "us-east-1"
    assert variables["STARTER_ROLE_ARN"] == (
        "arn:aws:iam::222222222222:role/flightdelay-dev-retrain-starter"
    )
    assert variables["RETRAIN_MIN_HOURS"] == str(MIN_HOURS[env])
    _, role = _one(resources, "AWS::IAM::Role", "RetrainGate")
    assert role["Properties"]["RoleName"] == f"flightdelay-{env}-retrain-gate-{region}"
    assert variables["ALARM_NAME"] == {"Ref": alarm_id}
    named = [s for s in _statements(resources, "RetrainGate") if s.get("Sid")]
    assert named == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Resource": "arn:aws:iam::222222222222:role/flightdelay-dev-retrain-starter",
            "Sid": "AssumeHubRetrainStarter",
        },
        {
            "Action": "cloudwatch:DescribeAlarms",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [alarm_id, "Arn"]},
            "Sid": "ReadTheDriftAlarmState",
        },
    ]
    # The recheck: a failed retrain is retried while the alarm stays in ALARM.
    _, recheck = _one(resources, "AWS::Events::Rule", "Recheck")
    days = MIN_HOURS[env] // 24  # CDK writes whole days as days
    assert recheck["Properties"]["ScheduleExpression"] == f"rate({days} day{'s' * (days > 1)})"
    (target,) = recheck["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"time": "$.time"}
    # EventBridge inserts the event's time as a JSON string where <time> stands.
    assert json.loads(transformer["InputTemplate"].replace("<time>", '"t"')) == {
        "gate": "recheck",
        "time": "t",
    }


def test_the_hub_role_trusts_exactly_the_gates_and_starts_one_pipeline(
    templates: dict[str, Any],
) -> None:
    resources = _resources(templates, "dev-us-east-1", "Training")
    _, role = _one(resources, "AWS::IAM::Role", "RetrainStarter")
    assert role["Properties"]["RoleName"] == "flightdelay-dev-retrain-starter"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    gates = trust["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    accounts = {"staging": "333333333333", "prod": "444444444444"}
    expected = sorted(
        f"arn:aws:iam::{accounts[s.split('-')[0]]}:role/flightdelay-{s.split('-', 1)[0]}"
        f"-retrain-gate-{s.split('-', 1)[1]}"
        for s in SERVING_STAGES
    )
    assert gates == expected
    assert trust["Principal"]["AWS"] == [f"arn:aws:iam::{a}:root" for a in accounts.values()]
    statements = {s["Sid"]: s for s in _statements(resources, "RetrainStarter")}
    pipeline = "arn:aws:sagemaker:us-east-1:222222222222:pipeline/flightdelay-dev-training"
    group = "arn:aws:sagemaker:us-east-1:222222222222:model-package-group/flightdelay-dev"
    # Each call only on its own resource; nothing else (the Sids are the whole policy).
    assert {sid: (st["Action"], st["Resource"]) for sid, st in statements.items()} == {
        "ListAndStartThisPipeline": (
            ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            pipeline,
        ),
        # Whether a refused run still holds: the current definition's defaults and version.
        "ReadThisPipelinesCurrentDefinition": (
            ["sagemaker:DescribePipeline", "sagemaker:ListPipelineVersions"],
            pipeline,
        ),
        # Steps, parameters and version of this pipeline's executions only.
        "ReadThisPipelinesExecutionSteps": (
            [
                "sagemaker:DescribePipelineExecution",
                "sagemaker:ListPipelineExecutionSteps",
                "sagemaker:ListPipelineParametersForExecution",
            ],
            f"{pipeline}/execution/*",
        ),
        # The incumbent a new run would be judged against.
        "FindThisGroupsApprovedIncumbent": ("sagemaker:ListModelPackages", group),
    }


def test_every_instance_backed_serving_stage_is_monitored(templates: dict[str, Any]) -> None:
    monitoring = {path.split("/")[0] for path in templates if path.endswith("/Monitoring")}
    assert monitoring == set(SERVING_STAGES)
    assert "dev-us-east-1/Serving" in templates  # serverless: served, not monitored


def test_no_monitoring_without_a_served_model(tmp_path: Path, platform: PlatformConfig) -> None:
    releases = default_releases(platform).with_environment("staging", EnvironmentRelease())
    options = AppOptions(only_environment="staging", with_delivery_pipeline=False)
    assembly = synth_app(platform, tmp_path, options, releases)
    templates = stack_templates(Path(assembly.directory))
    assert "staging-eu-west-1/Data" in templates
    assert not any(path.endswith(("/Monitoring", "/Serving")) for path in templates)


def test_the_baseline_comes_with_the_served_model(platform: PlatformConfig) -> None:
    release = default_releases(platform).get("prod").current
    assert release is not None
    assert baseline_key(release) == f"models/sha256/{release.sha256}/model.tar.gz"


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [("rate(1 day)", 86400), ("rate(6 hours)", 21600), ("rate(30 minutes)", 1800)],
)
def test_the_alarm_period_is_the_schedule_period(schedule: str, seconds: int) -> None:
    assert schedule_period(schedule).to_seconds() == seconds


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("cron(0 3 * * ? *)", "needs a rate"),
        ("rate(4 days)", "7-day alarm window"),
        ("rate(13 hours)", ""),  # 26 h of two runs is fine above one hour periods
    ],
)
def test_schedules_the_alarm_cannot_follow_are_refused(schedule: str, message: str) -> None:
    if not message:
        assert schedule_period(schedule).to_hours() == 13
        return
    with pytest.raises(ValueError, match=message):
        schedule_period(schedule)
