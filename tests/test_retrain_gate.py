"""The retrain gate: rate limiting against botocore's Stubber (moto's ListPipelineExecutions
has no real statuses: its executions succeed at once), throttling through botocore's own
retry loop, and the handler's cross-account path (assume the hub role, call the hub region)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from helpers import Throttle, load_lambda_module

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PIPELINE = "flightdelay-dev-training"
ALARM = "prod-eu-west-1-Monitoring-DriftPersists-ABC"
ENV = {
    "PIPELINE_NAME": PIPELINE,
    "PIPELINE_REGION": "us-east-1",
    "STARTER_ROLE_ARN": "arn:aws:iam::222222222222:role/flightdelay-dev-retrain-starter",
    "RETRAIN_MIN_HOURS": "72",
    "ENVIRONMENT_NAME": "prod",
    "ALARM_NAME": ALARM,
    "MODEL_PACKAGE_GROUP_NAME": "flightdelay-models",
}


refusal = load_lambda_module("retrain_gate", "gate_refusal", "gate_refusal")
logic = load_lambda_module("retrain_gate", "gate_logic", "gate_logic")
handler_mod = load_lambda_module("retrain_gate", "handler", "retrain_gate_handler")
CONFIG = logic.GateConfig.from_env(ENV)


def _event(state: str = "ALARM", time: str = "2026-11-26T11:59:30Z") -> dict[str, Any]:
    return {
        "time": time,
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "region": "eu-west-1",
        "detail": {
            "alarmName": ALARM,
            "state": {"value": state, "reason": "Threshold Crossed: 2 datapoints >= 0.2"},
        },
    }


def _execution(
    hours_ago: float, status: str = "Succeeded", n: int = 1, name: str = "retrain-2026-11-01"
) -> dict[str, Any]:
    return {
        "PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:222222222222:pipeline/{PIPELINE}"
        f"/execution/exec{n}",
        "StartTime": NOW - timedelta(hours=hours_ago),
        "PipelineExecutionStatus": status,
        "PipelineExecutionDisplayName": name,
    }


LIST_PARAMS = {
    "PipelineName": PIPELINE,
    "SortBy": "CreationTime",
    "SortOrder": "Descending",
    "MaxResults": logic.RECENT_EXECUTIONS,
}


def _stubbed(
    executions: list[dict[str, Any]],
    expect_start: bool,
    steps: list[dict[str, Any]] | None = None,
    standing: Standing | None = None,
    failing: str | None = None,
) -> tuple[Any, Stubber]:
    """steps: the ListPipelineExecutionSteps pages the gate is expected to ask for; standing:
    what it then reads about the refused run; failing: the next read, refused (AccessDenied)."""
    client = boto3.client("sagemaker", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "list_pipeline_executions", {"PipelineExecutionSummaries": executions}, LIST_PARAMS
    )
    token = None
    for page in steps or []:
        expected = {"PipelineExecutionArn": ANY, "SortOrder": "Descending"}
        stubber.add_response(
            "list_pipeline_execution_steps",
            page,
            {**expected, **({"NextToken": token} if token else {})},
        )
        token = page.get("NextToken")
    if standing is not None:
        _stub_standing(stubber, standing)
    if failing is not None:
        stubber.add_client_error(failing, "AccessDeniedException", http_status_code=400)
    if expect_start:
        stubber.add_response(
            "start_pipeline_execution",
            {"PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:222222222222:pipeline/"
             f"{PIPELINE}/execution/new"},
            {
                "PipelineName": PIPELINE,
                "PipelineExecutionDescription": ANY,
                "PipelineExecutionDisplayName": ANY,
                "PipelineParameters": ANY,
                "ClientRequestToken": ANY,
            },
        )  # fmt: skip
    stubber.activate()
    return client, stubber


def test_a_recent_execution_blocks_a_new_one() -> None:
    client, stubber = _stubbed([_execution(hours_ago=5)], expect_start=False)
    result = logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    stubber.assert_no_pending_responses()  # and start was never called: no stub for it
    assert result["started"] is False
    assert "5.0 h ago (less than 72 h)" in result["reason"]


def test_an_old_execution_lets_drift_start_one_naming_the_alarm() -> None:
    client, stubber = _stubbed([_execution(hours_ago=73), _execution(200, n=2)], True)
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sagemaker.StartPipelineExecution",
        lambda params, **_: calls.append(dict(params)),
    )
    result = logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    stubber.assert_no_pending_responses()
    assert result["started"] is True
    assert result["execution_arn"].endswith("/execution/new")
    (call,) = calls
    assert ALARM in call["PipelineExecutionDescription"]
    assert "prod, eu-west-1" in call["PipelineExecutionDescription"]


def test_no_execution_at_all_starts_one() -> None:
    client, stubber = _stubbed([], expect_start=True)
    assert logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)["started"] is True
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["Executing", "Stopping"])
def test_a_running_execution_blocks_even_when_old(status: str) -> None:
    client, stubber = _stubbed([_execution(hours_ago=100, status=status)], expect_start=False)
    result = logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    stubber.assert_no_pending_responses()
    assert result["started"] is False
    assert "still running" in result["reason"]


def test_the_window_boundary_is_inclusive_of_min_hours() -> None:
    assert logic.decide([_execution(hours_ago=72)], NOW, 72).start is True
    assert logic.decide([_execution(hours_ago=71.9)], NOW, 72).start is False


def test_an_event_that_is_not_alarm_calls_nothing() -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(client) as stubber:  # any call would fail: no responses queued
        result = logic.handle_alarm_event(_event("OK"), CONFIG, client, now=NOW)
        stubber.assert_no_pending_responses()
    assert result == {"started": False, "reason": "alarm state is 'OK', not 'ALARM'"}


def test_throttling_is_retried_by_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _s: None)  # no real backoff
    client = boto3.client("sagemaker", region_name="us-east-1", config=logic.BOTO_CONFIG)
    throttler = Throttle(
        client,
        times=3,
        bodies={
            "ListPipelineExecutions": {"PipelineExecutionSummaries": []},
            "StartPipelineExecution": {"PipelineExecutionArn": "arn:aws:sagemaker:x"},
        },
    )
    result = logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    assert result["started"] is True
    assert throttler.sends == ["ListPipelineExecutions"] * 4 + ["StartPipelineExecution"]


def test_throttling_beyond_the_retry_budget_fails_the_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda's async retries (the rule allows 2) then get another chance."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _s: None)
    client = boto3.client("sagemaker", region_name="us-east-1", config=logic.BOTO_CONFIG)
    throttler = Throttle(client, times=100, bodies={})
    with pytest.raises(client.exceptions.ClientError, match="ThrottlingException"):
        logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    assert len(throttler.sends) == 6  # the first try and 5 retries, never a start


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"PIPELINE_NAME": ""}, "PIPELINE_NAME is not set"),
        ({"RETRAIN_MIN_HOURS": "soon"}, "whole number of hours"),
        ({"RETRAIN_MIN_HOURS": "0"}, "at least 1"),
    ],
)
def test_misconfiguration_is_one_clear_error(change: dict[str, str], message: str) -> None:
    with pytest.raises(logic.GateConfigError, match=message):
        logic.GateConfig.from_env({**ENV, **change})


@pytest.mark.parametrize("kind", ["alarm", "recheck"])
def test_handler_assumes_the_hub_role_and_calls_the_hub_region(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """Both event kinds EventBridge sends get through the handler to a decision."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    sts = boto3.client("sts", region_name="eu-west-1")
    sts_stub = Stubber(sts)
    sts_stub.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAHUBHUBHUBHUB",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": NOW + timedelta(hours=1),
            }
        },
        {"RoleArn": ENV["STARTER_ROLE_ARN"], "RoleSessionName": "retrain-gate-prod"},
    )
    sts_stub.activate()
    sagemaker, sm_stub = _stubbed([_execution(hours_ago=1)], expect_start=False)
    made: dict[str, dict[str, Any]] = {}

    cloudwatch = _cloudwatch("ALARM", NOW - timedelta(minutes=30))  # after the last run

    def client(name: str, **kwargs: Any) -> Any:
        assert name not in made, f"a second {name} client"
        made[name] = kwargs
        return {"sts": sts, "sagemaker": sagemaker, "cloudwatch": cloudwatch}[name]

    monkeypatch.setattr(handler_mod.boto3, "client", client)
    monkeypatch.setattr(handler_mod, "clock", lambda: NOW)
    context = SimpleNamespace(
        function_name="gate", memory_limit_in_mb=256, aws_request_id="r1",
        invoked_function_arn="arn:aws:lambda:eu-west-1:444444444444:function:gate",
    )  # fmt: skip
    result = handler_mod.handler(RECHECK if kind == "recheck" else _event(), context)
    sts_stub.assert_no_pending_responses()
    sm_stub.assert_no_pending_responses()
    assert result["started"] is False
    assert "1.0 h ago (less than 72 h)" in result["reason"]  # decided, not ignored
    sm_kwargs = made["sagemaker"]
    assert sm_kwargs["region_name"] == "us-east-1"
    assert sm_kwargs["aws_access_key_id"] == "ASIAHUBHUBHUBHUB"
    assert sm_kwargs["aws_session_token"] == "token"
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert emitted[-1]["HeldBack"] == [1.0]  # the decision, counted once


def test_the_role_session_name_is_cut_to_the_64_characters_sts_allows() -> None:
    sts = boto3.client("sts", region_name="eu-west-1")
    stub = Stubber(sts)
    credentials = {
        "AccessKeyId": "ASIAHUBHUBHUBHUB",
        "SecretAccessKey": "secret",
        "SessionToken": "token",
        "Expiration": NOW,
    }
    name = "retrain-gate-" + "x" * 60  # 73 characters
    for expected in (name[:64], "retrain-gate-dev"):
        stub.add_response(
            "assume_role",
            {"Credentials": credentials},
            {"RoleArn": ENV["STARTER_ROLE_ARN"], "RoleSessionName": expected},
        )
    config = logic.GateConfig.from_env(ENV)
    with stub:
        logic.assume_starter_role(sts, config, name)
        logic.assume_starter_role(sts, config, "retrain-gate-dev")
    stub.assert_no_pending_responses()


# ---- Idempotency per window and retry after a failed run (issue 12) ----------------------

# ListPipelineExecutionSteps of a Failed run, newest first: crashed in Train, or evaluated
# and refused at the Fail step (the pipeline's QualityGateFailed, Metadata.Fail).
STEP_TIME = NOW - timedelta(hours=99)
PACKAGES = "arn:aws:sagemaker:us-east-1:222222222222:model-package/flightdelay-models"
INCUMBENT = f"{PACKAGES}/4"
CRASHED_STEPS = [
    {
        "StepName": "Train",
        "StartTime": STEP_TIME,
        "StepStatus": "Failed",
        "FailureReason": "ClientError: Spot capacity not available",
        "Metadata": {"TrainingJob": {"Arn": "arn:aws:sagemaker:us-east-1:222222222222:"
                                            "training-job/pipelines-x-train"}},
    },
    {"StepName": "Preprocess", "StartTime": STEP_TIME, "StepStatus": "Succeeded", "Metadata": {}},
]  # fmt: skip
GATE_MESSAGE = "Quality gate failed: candidate AUC 0.66 (required >= 0.7); non-inferior = 0"
REFUSED_STEPS = [
    {
        "StepName": "QualityGateFailed",
        "StartTime": STEP_TIME,
        "StepStatus": "Failed",
        "FailureReason": GATE_MESSAGE,
        "Metadata": {"Fail": {"ErrorMessage": GATE_MESSAGE}},
    },
    {
        "StepName": "CheckQuality",
        "StartTime": STEP_TIME,
        "StepStatus": "Succeeded",
        "Metadata": {"Condition": {"Outcome": "False"}},
    },
    {
        "StepName": "FindIncumbent",
        "StartTime": STEP_TIME,
        "StepStatus": "Succeeded",
        "Metadata": {
            "Lambda": {
                "Arn": "arn:aws:lambda:us-east-1:222222222222:function:find-incumbent",
                "OutputParameters": [
                    {"Name": "IncumbentModelUrl", "Value": "s3://models/v4/model.tar.gz"},
                    {"Name": "HasIncumbent", "Value": "true"},
                    {"Name": "IncumbentModelPackageArn", "Value": INCUMBENT},
                ],
            }
        },
    },
]


def _steps(steps: list[dict[str, Any]], next_token: str | None = None) -> dict[str, Any]:
    return {"PipelineExecutionSteps": steps, **({"NextToken": next_token} if next_token else {})}


# The deployed definition's parameters (DescribePipeline's PipelineDefinition), as synthesized.
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [
        {"Name": "WindowEnd", "Type": "String", "DefaultValue": "latest"},
        {"Name": "TestEnd", "Type": "String", "DefaultValue": ""},
        {"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.7},
        {"Name": "TrainMonths", "Type": "Integer", "DefaultValue": 6},
    ],
    "Steps": [],
}
CHECKS = ("definition", "parameters", "version", "incumbent")


@dataclass(frozen=True)
class Standing:
    """What the gate reads about a refused run after its steps, answered in the order it asks
    and through `until`, the check where it must stop (the first that lapses). The defaults
    describe a refusal that holds: no parameters, version 3 of 3, incumbent v4 still approved."""

    parameters: tuple[tuple[str, str], ...] = ()
    definition: str = json.dumps(DEFINITION)
    run_version: int | None = 3
    current_version: int | None = 3
    approved: str = INCUMBENT
    until: str = "incumbent"


HOLDS = Standing()


def _stub_standing(stubber: Stubber, standing: Standing) -> None:
    asked = CHECKS[: CHECKS.index(standing.until) + 1]
    execution = {"PipelineExecutionArn": ANY}
    stubber.add_response(
        "describe_pipeline", {"PipelineDefinition": standing.definition}, {"PipelineName": PIPELINE}
    )
    if "parameters" in asked:
        listed = [{"Name": n, "Value": v} for n, v in standing.parameters]
        stubber.add_response(
            "list_pipeline_parameters_for_execution", {"PipelineParameters": listed}, execution
        )
    if "version" in asked:
        run = {} if standing.run_version is None else {"PipelineVersionId": standing.run_version}
        stubber.add_response("describe_pipeline_execution", run, execution)
        current = [] if standing.current_version is None else [
            {"PipelineVersionId": standing.current_version}
        ]  # fmt: skip
        stubber.add_response(
            "list_pipeline_versions",
            {"PipelineVersionSummaries": current},
            {"PipelineName": PIPELINE, "SortOrder": "Descending", "MaxResults": 1},
        )
    if "incumbent" in asked:
        approved = [
            {"ModelPackageArn": standing.approved, "CreationTime": STEP_TIME,
             "ModelPackageStatus": "Completed"}
        ] if standing.approved else []  # fmt: skip
        stubber.add_response(
            "list_model_packages",
            {"ModelPackageSummaryList": approved},
            {
                "ModelPackageGroupName": "flightdelay-models",
                "ModelApprovalStatus": "Approved",
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 1,
            },
        )


def _started_with(
    executions: list[dict[str, Any]],
    event: dict[str, Any],
    steps: list[dict[str, Any]] | None = None,
    standing: Standing | None = None,
) -> dict[str, Any]:
    """The StartPipelineExecution request the gate sends for `event`."""
    client, stubber = _stubbed(executions, expect_start=True, steps=steps, standing=standing)
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sagemaker.StartPipelineExecution",
        lambda params, **_: calls.append(dict(params)),
    )
    result = logic.handle_alarm_event(event, CONFIG, client, now=NOW)
    stubber.assert_no_pending_responses()
    assert result["started"] is True
    (call,) = calls
    return call


def test_the_run_is_on_the_window_of_the_alarm_date() -> None:
    call = _started_with([], _event(time="2026-11-26T23:59:59Z"))
    assert call["PipelineParameters"] == [{"Name": "WindowEnd", "Value": "2026-11-26"}]
    assert call["PipelineExecutionDisplayName"] == "retrain-2026-11-26"
    assert 32 <= len(call["ClientRequestToken"]) <= 128
    next_day = _started_with([], _event(time="2026-11-27T00:00:00Z"))
    assert next_day["PipelineParameters"][0]["Value"] == "2026-11-27"


def test_two_gates_at_once_send_one_token_so_sagemaker_starts_one_run() -> None:
    """Two regions' alarms (or a redelivered event) on the same day see the same executions:
    the same ClientRequestToken, and SageMaker completes an idempotent request once."""
    first = _started_with([], _event(time="2026-11-26T10:00:00Z"))
    second = _started_with([], {**_event(time="2026-11-26T10:00:01Z"), "region": "us-east-1"})
    assert first["ClientRequestToken"] == second["ClientRequestToken"]
    other_window = _started_with([], _event(time="2026-11-25T10:00:00Z"))
    assert other_window["ClientRequestToken"] != first["ClientRequestToken"]


def test_a_failed_run_of_the_window_gets_a_new_token() -> None:
    today = "retrain-2026-11-26"
    fresh = _started_with([], _event())
    failed = [_execution(80, "Failed", name=today)]
    retry = _started_with(failed, _event(), [_steps(CRASHED_STEPS)])
    assert retry["ClientRequestToken"] != fresh["ClientRequestToken"]
    assert logic.attempt_of(failed, NOW.date()) == 1
    # Succeeded runs and other windows' failures are not attempts of this window.
    assert logic.attempt_of([_execution(80, name=today)], NOW.date()) == 0
    assert logic.attempt_of([_execution(80, "Failed")], NOW.date()) == 0
    assert logic.attempt_of([_execution(80, "Stopped", name=today)], NOW.date()) == 1


def _cloudwatch(state: str | None, since: datetime) -> Any:
    client = boto3.client("cloudwatch", region_name="eu-west-1")
    stubber = Stubber(client)
    alarms = [] if state is None else [
        {"AlarmName": ALARM, "StateValue": state, "StateUpdatedTimestamp": since}
    ]  # fmt: skip
    stubber.add_response(
        "describe_alarms",
        {"MetricAlarms": alarms},
        {"AlarmNames": [ALARM], "AlarmTypes": ["MetricAlarm"]},
    )
    stubber.activate()
    return client


RECHECK = {"gate": "recheck", "time": "2026-11-26T12:00:00Z", "region": "eu-west-1"}


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA", None])
def test_a_recheck_does_nothing_unless_the_alarm_is_in_alarm(state: str | None) -> None:
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sagemaker) as stubber:  # no SageMaker call at all
        result = logic.handle_alarm_event(
            RECHECK, CONFIG, sagemaker, NOW, _cloudwatch(state, NOW - timedelta(days=9))
        )
        stubber.assert_no_pending_responses()
    assert result["started"] is False and "recheck" in result["reason"]


def test_a_recheck_retries_after_the_run_for_the_alarm_failed() -> None:
    """The alarm stays in ALARM after its run failed: no new event, but the recheck starts
    the next attempt once the rate limit allows."""
    since = NOW - timedelta(days=5)
    failed = [_execution(100, "Failed", name="retrain-2026-11-22")]
    client, stubber = _stubbed(failed, expect_start=True, steps=[_steps(CRASHED_STEPS)])
    result = logic.handle_alarm_event(RECHECK, CONFIG, client, NOW, _cloudwatch("ALARM", since))
    stubber.assert_no_pending_responses()
    assert result["started"] is True
    # Inside the rate limit the failed run still holds the next one back.
    recent_failure = [_execution(10, "Failed")]
    client, stubber = _stubbed(recent_failure, expect_start=False)
    result = logic.handle_alarm_event(RECHECK, CONFIG, client, NOW, _cloudwatch("ALARM", since))
    assert result["started"] is False and "10.0 h ago" in result["reason"]


def test_a_recheck_leaves_an_alarm_a_successful_run_answered() -> None:
    since = NOW - timedelta(hours=100)
    # Succeeded after the alarm entered ALARM: answered, even though 99 h > the 72 h limit.
    assert logic.decide([_execution(99)], NOW, 72, alarm_since=since).start is False
    assert logic.decide([_execution(100)], NOW, 72, alarm_since=since).start is False  # edge
    # Succeeded before the alarm: does not answer it.
    assert logic.decide([_execution(100.1)], NOW, 72, alarm_since=since).start is True
    # An alarm-transition event ignores earlier successes beyond the rate limit.
    assert logic.decide([_execution(99)], NOW, 72).start is True


def test_a_recheck_without_a_cloudwatch_client_is_a_configuration_error() -> None:
    with pytest.raises(logic.GateConfigError, match="CloudWatch"):
        logic.handle_alarm_event(RECHECK, CONFIG, object(), NOW)


# ---- decision edges: which execution is judged, the window, the config limits ----------------


def test_the_newest_execution_is_judged_whatever_order_the_api_returns() -> None:
    old, recent = _execution(hours_ago=500, n=1), _execution(hours_ago=10, n=2)
    for listed in ([old, recent], [recent, old]):
        decision = logic.decide(listed, NOW, 72)
        assert decision.start is False and "exec2" in decision.reason


def test_one_second_inside_the_window_still_blocks() -> None:
    inside = _execution(hours_ago=72 - 1 / 3600)
    assert logic.decide([inside], NOW, 72).start is False
    assert logic.decide([inside], NOW + timedelta(seconds=1), 72).start is True


@pytest.mark.parametrize("status", ["Succeeded", "Failed", "Stopped"])
def test_a_finished_execution_does_not_count_as_running(status: str) -> None:
    assert logic.decide([_execution(hours_ago=100, status=status)], NOW, 72).start is True


def test_a_running_execution_is_named_even_behind_an_old_finished_one() -> None:
    listed = [_execution(hours_ago=300, n=1), _execution(200, "Executing", n=2)]
    decision = logic.decide(listed, NOW, 72)
    assert decision.start is False and "exec2 is still running" in decision.reason


@pytest.mark.parametrize(("hours", "accepted"), [("1", True), ("0", False), ("-1", False)])
def test_retrain_min_hours_accepts_one_hour_and_refuses_less(hours: str, accepted: bool) -> None:
    if accepted:
        assert logic.GateConfig.from_env({**ENV, "RETRAIN_MIN_HOURS": hours}).min_hours == 1
    else:
        with pytest.raises(logic.GateConfigError, match="at least 1"):
            logic.GateConfig.from_env({**ENV, "RETRAIN_MIN_HOURS": hours})


@pytest.mark.parametrize("missing", [*ENV])
def test_every_setting_is_required(missing: str) -> None:
    with pytest.raises(logic.GateConfigError, match=f"{missing} is not set"):
        logic.GateConfig.from_env({k: v for k, v in ENV.items() if k != missing})


def test_the_description_is_cut_at_the_api_limit_exactly() -> None:
    event = _event()
    event["detail"]["state"]["reason"] = "x" * 5000
    assert len(logic.description(event, CONFIG)) == logic.DESCRIPTION_LIMIT == 3072
    short = logic.description(_event(), CONFIG)
    assert len(short) < 3072 and short.endswith("Threshold Crossed: 2 datapoints >= 0.2")


@pytest.mark.parametrize(("has_start_time", "starts"), [(True, True), (False, False)])
def test_an_execution_without_start_time_counts_as_started_now(
    has_start_time: bool, starts: bool
) -> None:
    """A summary without StartTime (optional in the API) blocks a start instead of crashing;
    the same execution with an old StartTime does not."""
    execution = _execution(hours_ago=CONFIG.min_hours + 1)
    if not has_start_time:
        del execution["StartTime"]
    decision = logic.decide([execution], NOW, CONFIG.min_hours)
    assert decision.start is starts


# ---- Refused by the quality gate is a decision, not a fault (issue 10's known limit) ---------


def _held(
    executions: list[dict[str, Any]],
    event: dict[str, Any],
    steps: list[dict[str, Any]],
    standing: Standing | None = None,
) -> dict[str, Any]:
    """The gate's answer when it must not start: every stubbed call made, no start."""
    client, stubber = _stubbed(executions, expect_start=False, steps=steps, standing=standing)
    cloudwatch = _cloudwatch("ALARM", NOW - timedelta(days=9))
    result = logic.handle_alarm_event(event, CONFIG, client, NOW, cloudwatch)
    stubber.assert_no_pending_responses()
    assert result["started"] is False
    return result


@pytest.mark.parametrize("event", [RECHECK, _event()], ids=["recheck", "alarm"])
def test_a_run_the_quality_gate_refused_is_not_retried_on_the_same_data(
    event: dict[str, Any],
) -> None:
    """Beyond the rate limit, the alarm still in ALARM: the refused run's data has not
    changed (no newer run), so a new run would be refused again."""
    refused = [_execution(100, "Failed", name="retrain-2026-11-22")]
    result = _held(refused, event, [_steps(REFUSED_STEPS)], HOLDS)
    assert result["waiting_for_new_data"] is True
    assert "exec1 was refused by the quality gate" in result["reason"]
    assert GATE_MESSAGE in result["reason"] and "waits for new data" in result["reason"]


def test_a_crashed_run_of_the_same_kind_is_retried_with_the_next_attempt() -> None:
    """The other side: Failed without reaching the Fail step is a fault, retried."""
    today = [_execution(100, "Failed", name="retrain-2026-11-26")]
    retry = _started_with(today, _event(), [_steps(CRASHED_STEPS)])
    first = _started_with([], _event())
    assert retry["ClientRequestToken"] == logic.request_token(PIPELINE, NOW.date(), 1)
    assert retry["ClientRequestToken"] != first["ClientRequestToken"]


def test_a_stopped_run_is_retried_without_asking_for_its_steps() -> None:
    stopped = [_execution(100, "Stopped", name="retrain-2026-11-26")]
    retry = _started_with(stopped, _event())  # no ListPipelineExecutionSteps stub
    assert retry["ClientRequestToken"] == logic.request_token(PIPELINE, NOW.date(), 1)


def test_new_data_ends_the_wait_through_the_run_its_arrival_starts() -> None:
    """A newer execution (the new-data trigger's, no display name) is judged instead of the
    refusal: one second newer and crashed, the gate retries; refused too, it keeps waiting."""
    refused = _execution(100, "Failed", n=1, name="retrain-2026-11-22")
    newer = _execution(100 - 1 / 3600, "Failed", n=2)
    del newer["PipelineExecutionDisplayName"]
    call = _started_with([refused, newer], _event(), [_steps(CRASHED_STEPS)])
    assert call["PipelineExecutionDisplayName"] == "retrain-2026-11-26"
    result = _held([newer, refused], _event(), [_steps(REFUSED_STEPS)], HOLDS)
    assert "exec2 was refused" in result["reason"]
    # A crash one second older than the refusal: the refusal is the newest, and holds.
    older_crash = _execution(100 + 1 / 3600, "Failed", n=2)
    result = _held([older_crash, refused], _event(), [_steps(REFUSED_STEPS)], HOLDS)
    assert "exec1 was refused" in result["reason"]


def test_the_fail_step_is_found_on_any_page() -> None:
    pages = [_steps(CRASHED_STEPS[1:], next_token="page-2"), _steps(REFUSED_STEPS)]
    result = _held([_execution(100, "Failed")], _event(), pages, HOLDS)
    assert result["waiting_for_new_data"] is True


def test_inside_the_rate_limit_a_failed_run_costs_no_steps_call() -> None:
    """The rate limit decides first; the steps are asked for only when they matter."""
    result = _held([_execution(10, "Failed")], _event(), [])
    assert "10.0 h ago" in result["reason"] and "waiting_for_new_data" not in result


@pytest.mark.parametrize(
    ("steps", "refusal"),
    [
        (REFUSED_STEPS, GATE_MESSAGE),
        (
            [{"StepName": "QualityGateFailed", "Metadata": {"Fail": {}}}],
            "step QualityGateFailed failed the run",
        ),
        (CRASHED_STEPS, None),
        # The condition chose the else branch but the Fail step has not run: not over.
        (REFUSED_STEPS[1:], None),
        ([{"StepName": "Odd", "Metadata": None}, {"StepName": "Odd2"}], None),
        ([], None),
    ],
)
def test_only_a_run_that_reached_the_fail_step_is_a_refusal(
    steps: list[dict[str, Any]], refusal: str | None
) -> None:
    assert logic.quality_gate_refusal(steps) == refusal


def test_decide_without_a_refusal_lookup_treats_failed_runs_as_faults() -> None:
    failed = [_execution(100, "Failed")]
    assert logic.decide(failed, NOW, 72).start is True
    held = logic.decide(failed, NOW, 72, refusal=lambda e: refusal.Refusal("refused"))
    assert held.start is False and held.waiting_for_new_data is True
    lapsed = logic.decide(failed, NOW, 72, refusal=lambda e: refusal.Refusal("refused", "x"))
    assert lapsed.start is True and lapsed.waiting_for_new_data is False
    assert "was refused by the quality gate, but x" in lapsed.reason


@pytest.mark.parametrize(
    ("result", "metric"),
    [
        ({"started": True}, "Started"),
        ({"started": False, "reason": "rate limit"}, "HeldBack"),
        ({"started": False, "waiting_for_new_data": True}, "WaitingForNewData"),
    ],
)
def test_each_decision_has_its_own_metric(result: dict[str, Any], metric: str) -> None:
    assert handler_mod.decision_metric(result) == metric


# ---- A refusal holds only for the run a new one would repeat (issue 12/14's known limits) ---

REFUSED_RUN = [_execution(100, "Failed", name="retrain-2026-11-22")]
RUN_DAY = (NOW - timedelta(hours=100)).date()  # the refused run's UTC start date


def _lapsed(standing: Standing, steps: list[dict[str, Any]] = REFUSED_STEPS) -> str:
    """The reason of the run the gate starts because the refusal no longer holds."""
    client, stubber = _stubbed(REFUSED_RUN, True, [_steps(steps)], standing)
    result = logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    stubber.assert_no_pending_responses()
    assert result["started"] is True and "waiting_for_new_data" not in result
    reason: str = result["reason"]
    assert "exec1 was refused by the quality gate, but " in reason
    return reason


def _holds(standing: Standing) -> None:
    result = _held(REFUSED_RUN, _event(), [_steps(REFUSED_STEPS)], standing)
    assert result["waiting_for_new_data"] is True


@pytest.mark.parametrize(
    ("parameters", "overridden"),
    [
        ((("TestEnd", "2026-06-30"),), "TestEnd"),  # an operator's backfill with explicit dates
        ((("AucThreshold", "0.75"),), "AucThreshold"),  # a stricter threshold
        ((("AucThreshold", "0.65"),), "AucThreshold"),  # a looser one: also not the default
        # Only WindowEnd reads a date on or after the run's start as the default "latest".
        ((("TestEnd", RUN_DAY.isoformat()),), "TestEnd"),
        ((("TrainMonths", "5"), ("AucThreshold", "0.7")), "TrainMonths"),
        ((("WindowEnd", (RUN_DAY - timedelta(days=1)).isoformat()),), "WindowEnd"),
        ((("WindowEnd", "last week"),), "WindowEnd"),
        ((("NotInTheDefinition", "x"),), "NotInTheDefinition"),
    ],
)
def test_a_refused_run_with_parameters_of_its_own_does_not_hold_the_gate(
    parameters: tuple[tuple[str, str], ...], overridden: str
) -> None:
    reason = _lapsed(Standing(parameters=parameters, until="parameters"))
    assert f"it ran with parameters of its own ({overridden})" in reason


@pytest.mark.parametrize(
    "parameters",
    [
        (),  # ListPipelineParametersForExecution lists overrides only: none
        # ... or every value: the defaults, Float and Integer compared as numbers
        (("WindowEnd", "latest"), ("TestEnd", ""), ("AucThreshold", "0.70"), ("TrainMonths", "6")),
        (("WindowEnd", RUN_DAY.isoformat()),),  # the gate's own run: its start date (the edge)
        (("WindowEnd", (RUN_DAY + timedelta(days=1)).isoformat()),),
    ],
)
def test_a_refused_run_with_the_default_parameters_holds_the_gate(
    parameters: tuple[tuple[str, str], ...],
) -> None:
    _holds(Standing(parameters=parameters))


@pytest.mark.parametrize(
    ("run_version", "current_version", "why"),
    [
        (2, 3, "it ran on pipeline version 2, the current one is 3"),
        (None, 3, "the pipeline version it ran on is not known"),
        (3, None, "the pipeline version it ran on is not known"),
    ],
)
def test_a_refused_run_on_another_pipeline_version_does_not_hold_the_gate(
    run_version: int | None, current_version: int | None, why: str
) -> None:
    standing = Standing(run_version=run_version, current_version=current_version, until="version")
    assert why in _lapsed(standing)
    _holds(Standing(run_version=7, current_version=7))  # the other side: the same version


@pytest.mark.parametrize(
    ("approved_now", "why"),
    [
        (f"{PACKAGES}/3", f"incumbent {INCUMBENT}, the approved one now is {PACKAGES}/3"),
        (f"{PACKAGES}/5", f"the approved one now is {PACKAGES}/5"),  # a newer approval
        ("", f"incumbent {INCUMBENT}, the approved one now is (none)"),  # every one rejected
    ],
    ids=["rolled-back", "newer-approved", "none-left"],
)
def test_a_refusal_against_an_incumbent_no_longer_approved_does_not_hold(
    approved_now: str, why: str
) -> None:
    assert why in _lapsed(Standing(approved=approved_now))


def _with_incumbent_output(value: str | None) -> list[dict[str, Any]]:
    """REFUSED_STEPS with FindIncumbent's IncumbentModelPackageArn output set (None: absent)."""
    steps = json.loads(json.dumps(REFUSED_STEPS, default=str))
    outputs = steps[2]["Metadata"]["Lambda"]["OutputParameters"]
    outputs[:] = [o for o in outputs if o["Name"] != "IncumbentModelPackageArn"]
    if value is not None:
        outputs.append({"Name": "IncumbentModelPackageArn", "Value": value})
    return steps


def test_a_refusal_without_an_incumbent_holds_while_there_is_still_none() -> None:
    client, stubber = _stubbed(
        REFUSED_RUN, False, [_steps(_with_incumbent_output(""))], Standing(approved="")
    )
    result = logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    stubber.assert_no_pending_responses()
    assert result["waiting_for_new_data"] is True
    reason = _lapsed(Standing(approved=INCUMBENT), _with_incumbent_output(""))
    assert f"judged against incumbent (none), the approved one now is {INCUMBENT}" in reason


def test_a_run_from_before_the_incumbent_output_does_not_hold() -> None:
    reason = _lapsed(HOLDS, _with_incumbent_output(None))
    assert "it does not say which incumbent it was judged against" in reason


@pytest.mark.parametrize("definition", ["not json", "[]"])
def test_an_unreadable_definition_does_not_hold_the_gate(definition: str) -> None:
    reason = _lapsed(Standing(definition=definition, until="definition"))
    assert "the pipeline's current definition cannot be read" in reason


@pytest.mark.parametrize(
    ("answered", "failing"),
    [
        (None, "describe_pipeline"),
        ("definition", "list_pipeline_parameters_for_execution"),
        ("parameters", "describe_pipeline_execution"),
        ("version", "list_model_packages"),
    ],
)
def test_a_read_the_gate_is_refused_lapses_the_refusal_instead_of_crashing(
    answered: str | None, failing: str
) -> None:
    """E.g. a serving stage deployed before the hub's role has the new grants."""
    standing = None if answered is None else Standing(until=answered)
    client, stubber = _stubbed(REFUSED_RUN, True, [_steps(REFUSED_STEPS)], standing, failing)
    result = logic.handle_alarm_event(_event(), CONFIG, client, now=NOW)
    stubber.assert_no_pending_responses()
    assert result["started"] is True and "waiting_for_new_data" not in result
    assert "cannot be read: AccessDeniedException" in result["reason"]


def test_a_lapsed_refusal_starts_the_next_attempt_of_its_window() -> None:
    """Started as after a crash: a refused run of today's window counts as an attempt."""
    today = [_execution(100, "Failed", name="retrain-2026-11-26")]
    lapsed = replace(HOLDS, approved=f"{PACKAGES}/3")
    call = _started_with(today, _event(), [_steps(REFUSED_STEPS)], lapsed)
    assert call["ClientRequestToken"] == logic.request_token(PIPELINE, NOW.date(), 1)


def test_parameters_without_a_name_are_skipped_not_crashed_on() -> None:
    definition = {
        "Parameters": [
            {"Type": "Float", "DefaultValue": 0.7},  # no Name
            "WindowEnd",  # not an object
            {"Name": "WindowEnd", "DefaultValue": "latest"},
        ]
    }
    assert refusal.parameter_defaults(json.dumps(definition)) == {"WindowEnd": ("String", "latest")}


def test_parameter_values_are_compared_by_the_definitions_type() -> None:
    defaults = refusal.parameter_defaults(json.dumps(DEFINITION))
    assert defaults["AucThreshold"] == ("Float", 0.7)
    same = {"AucThreshold": "0.700", "TrainMonths": "6", "TestEnd": "", "WindowEnd": "latest"}
    assert refusal.overridden(same, defaults, RUN_DAY) == []
    other = {"AucThreshold": "0.7001", "TrainMonths": "6.5", "TestEnd": " ", "WindowEnd": "x"}
    assert refusal.overridden(other, defaults, RUN_DAY) == [
        "AucThreshold", "TestEnd", "TrainMonths", "WindowEnd"
    ]  # fmt: skip
    # A WindowEnd date needs the run's start date to be read as `latest`.
    assert refusal.overridden({"WindowEnd": RUN_DAY.isoformat()}, defaults, None) == ["WindowEnd"]
    boolean = {"Flag": ("Boolean", True)}
    assert refusal.overridden({"Flag": "TRUE"}, boolean, RUN_DAY) == []
    assert refusal.overridden({"Flag": "false"}, boolean, RUN_DAY) == ["Flag"]
