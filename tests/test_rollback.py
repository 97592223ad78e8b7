"""The rollback Lambda against moto (SNS, SageMaker endpoints and model packages) plus a narrow
emulation of the one API moto lacks (UpdateEndpoint), and botocore's Stubber for the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from helpers import Throttle, http_response, load_lambda_module
from moto import mock_aws

REGION = "us-east-1"
ENDPOINT = "flight-delay-prod"
OLD_CONFIG = "flight-delay-prod-v2"
NEW_CONFIG = "flight-delay-prod-v3"
OUR_ALARMS = ("flight-delay-prod-5xx-rate", "flight-delay-prod-latency")


logic = load_lambda_module("rollback", "rollback_logic", "rollback_logic")
handler_mod = load_lambda_module("rollback", "handler", "rollback_handler")


@dataclass
class EndpointEmulator:
    """UpdateEndpoint for moto, hooked on one client's events (nothing global is patched).

    Like the real service: UpdateEndpoint on a busy endpoint is a ValidationException; while
    updating, DescribeEndpoint keeps the old EndpointConfigName and reports the target in
    PendingDeploymentSummary; complete() finishes the deployment.
    """

    client: Any
    status: dict[str, str] = field(default_factory=dict)
    serving: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    update_calls: list[dict[str, Any]] = field(default_factory=list)
    refuse_with: str | None = None  # an error code UpdateEndpoint answers with, if set

    def __post_init__(self) -> None:
        events = self.client.meta.events
        events.register_first("before-call.sagemaker.UpdateEndpoint", self._update_endpoint)
        events.register("after-call.sagemaker.DescribeEndpoint", self._describe_endpoint)

    def _update_endpoint(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict]:
        request = json.loads(params["body"])
        name = request["EndpointName"]
        self.update_calls.append(request)
        if self.refuse_with is not None:
            refused = {"Error": {"Code": self.refuse_with, "Message": "refused by the test"}}
            return http_response(400, refused), refused
        current = self.client.describe_endpoint(EndpointName=name)  # raises when missing
        if current["EndpointStatus"] != "InService":
            error = {
                "Error": {
                    "Code": "ValidationException",
                    "Message": f"Cannot update in-progress endpoint {current['EndpointArn']}.",
                }
            }
            return http_response(400, error), error
        self.client.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])
        self.status[name] = "Updating"
        self.pending[name] = request["EndpointConfigName"]
        body = {"EndpointArn": current["EndpointArn"]}
        return http_response(200, body), body

    def _describe_endpoint(self, parsed: dict[str, Any], **_: Any) -> None:
        name = parsed.get("EndpointName")
        if name in self.status:
            parsed["EndpointStatus"] = self.status[name]
        if name in self.serving:
            parsed["EndpointConfigName"] = self.serving[name]
        if name in self.pending:
            parsed["PendingDeploymentSummary"] = {"EndpointConfigName": self.pending[name]}

    def start_deployment(self, name: str, config_name: str) -> None:
        self.status[name] = "Updating"
        self.pending[name] = config_name

    def complete(self, name: str) -> None:
        self.serving[name] = self.pending.pop(name)
        self.status[name] = "InService"


ALARM_ENTERED = datetime(2026, 11, 26, 10, 4, 40, 985000, tzinfo=UTC)


@dataclass
class AlarmTimes:
    """moto stamps alarm state changes with the wall clock; tests pin when each alarm entered
    its current state (DescribeAlarms' StateTransitionedTimestamp) so nothing reads a clock."""

    client: Any
    entered: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client.meta.events.register("after-call.cloudwatch.DescribeAlarms", self._pin)

    def _pin(self, parsed: dict[str, Any], **_: Any) -> None:
        for alarm in parsed.get("MetricAlarms", []):
            moment = self.entered.get(alarm["AlarmName"], ALARM_ENTERED)
            alarm["StateTransitionedTimestamp"] = moment
            alarm["StateUpdatedTimestamp"] = moment

    def set_state(self, alarm: str, state: str, entered: datetime = ALARM_ENTERED) -> None:
        self.client.set_alarm_state(AlarmName=alarm, StateValue=state, StateReason="test")
        self.entered[alarm] = entered


@dataclass
class World:
    sagemaker: Any
    sns: Any
    sqs: Any
    queue_url: str
    emulator: EndpointEmulator
    config: Any
    package_arn: str
    cloudwatch: Any = None
    alarms: Any = None

    def messages(self) -> list[dict[str, Any]]:
        out = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in out.get("Messages", [])]

    def package_status(self) -> str:
        desc = self.sagemaker.describe_model_package(ModelPackageName=self.package_arn)
        return str(desc["ModelApprovalStatus"])

    def endpoint(self) -> dict[str, Any]:
        return dict(self.sagemaker.describe_endpoint(EndpointName=ENDPOINT))


def alarm_event(alarm: str = OUR_ALARMS[0], state: str = "ALARM", previous: str = "OK") -> dict:
    """The documented CloudWatch 'Alarm State Change' event (single metric alarm)."""
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-26T10:04:40Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{alarm}"],
        "detail": {
            "alarmName": alarm,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 3 out of the last 3 datapoints were above 0.05",
                "timestamp": "2026-11-26T10:04:40.985+0000",
            },
            "previousState": {
                "value": previous,
                "reason": "Threshold Crossed: no datapoints were above",
                "timestamp": "2026-11-26T09:51:40.985+0000",
            },
            "configuration": {"metrics": [], "description": "5xx rate"},
        },
    }


def build_world(previous_config: str | None = OLD_CONFIG, boto_config: Any = None) -> World:
    """Inside mock_aws: two endpoint configs, the endpoint on the new one, an Approved package,
    an SNS topic with an SQS subscriber so tests can read what was published."""
    kwargs = {"region_name": REGION, "config": boto_config or logic.BOTO_CONFIG}
    sm = boto3.client("sagemaker", **kwargs)
    sns = boto3.client("sns", **kwargs)
    sqs = boto3.client("sqs", **kwargs)
    for name in (OLD_CONFIG, NEW_CONFIG):
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
            PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"},
        )
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "live",
                    "ModelName": name,
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=NEW_CONFIG)
    sm.create_model_package_group(ModelPackageGroupName="flight-delay")
    arns = [
        sm.create_model_package(
            ModelPackageGroupName="flight-delay",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "img", "ModelDataUrl": f"s3://b/v{v}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        for v in (2, 3)
    ]
    topic = sns.create_topic(Name="serving-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "false"},
    )
    config = logic.RollbackConfig.from_env(
        {
            "ENDPOINT_NAME": ENDPOINT,
            "ALARM_NAMES": ",".join(OUR_ALARMS),
            "PREVIOUS_ENDPOINT_CONFIG_NAME": previous_config or "",
            "CURRENT_ENDPOINT_CONFIG_NAME": NEW_CONFIG,
            "CURRENT_MODEL_PACKAGE_ARN": arns[1],
            "TOPIC_ARN": topic,
            "MANIFEST_HINT": "config/releases.yaml: prod",
        }
    )
    cloudwatch = boto3.client("cloudwatch", **kwargs)
    alarms = AlarmTimes(cloudwatch)
    for alarm in OUR_ALARMS:
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=3,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        alarms.set_state(alarm, "ALARM")
    return World(sm, sns, sqs, queue_url, EndpointEmulator(sm), config, arns[1], cloudwatch, alarms)


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        yield build_world()


def run(world: World, event: Any = None) -> dict[str, Any]:
    return dict(
        logic.handle_alarm_event(
            alarm_event() if event is None else event,
            world.config,
            world.sagemaker,
            world.sns,
            world.cloudwatch,
        )
    )


def test_rollback_updates_endpoint_rejects_package_and_notifies(world: World) -> None:
    result = run(world)

    assert result["action"] == "rolled_back"
    assert result["updated_endpoint"] and result["rejected_package"] and result["notified"]
    assert world.emulator.update_calls == [
        {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": OLD_CONFIG,
            "RetainAllVariantProperties": True,
            "RetainDeploymentConfig": False,
        }
    ]
    assert world.endpoint()["PendingDeploymentSummary"]["EndpointConfigName"] == OLD_CONFIG
    assert world.package_status() == "Rejected"
    desc = world.sagemaker.describe_model_package(ModelPackageName=world.package_arn)
    assert OUR_ALARMS[0] in desc["ApprovalDescription"]
    [message] = world.messages()
    assert message["Subject"] == f"Rolled back {ENDPOINT}"
    assert OLD_CONFIG in message["Message"]
    assert "config/releases.yaml: prod" in message["Message"]


def test_endpoint_updating_for_another_reason_is_retried_not_dropped(world: World) -> None:
    """A deployment or autoscaling (UpdateEndpointWeightsAndCapacities) holds the endpoint:
    the alarm stays in ALARM, so no new event would come; raising lets Lambda retry."""
    world.emulator.start_deployment(ENDPOINT, "flight-delay-prod-v4")

    with pytest.raises(logic.EndpointBusy, match=r"Updating.*must be retried"):
        run(world)

    assert world.emulator.update_calls == []
    assert world.package_status() == "Approved"
    world.emulator.complete(ENDPOINT)  # the other update ends; the retry rolls back
    world.emulator.serving[ENDPOINT] = NEW_CONFIG  # (autoscaling kept the same config)
    assert run(world)["action"] == "rolled_back"
    assert world.package_status() == "Rejected"


@pytest.mark.parametrize("status", ["Creating", "SystemUpdating", "RollingBack"])
def test_other_busy_statuses_are_retried(world: World, status: str) -> None:
    world.emulator.status[ENDPOINT] = status
    with pytest.raises(logic.RetryableError, match=status):
        run(world)
    assert world.emulator.update_calls == []
    assert world.messages() == []


def test_in_service_endpoint_is_not_busy(world: World) -> None:
    world.emulator.status[ENDPOINT] = "InService"
    assert run(world)["action"] == "rolled_back"


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_resolved_alarm_does_not_roll_back(world: World, state: str) -> None:
    """The event says ALARM, but the alarm has since recovered (a late or retried event)."""
    world.alarms.set_state(OUR_ALARMS[0], state, ALARM_ENTERED + timedelta(minutes=5))

    result = run(world)

    assert result["action"] == "stale"
    assert f"is {state} now" in result["reason"]
    assert world.emulator.update_calls == []
    assert world.package_status() == "Approved"


def test_alarm_in_a_later_episode_leaves_the_decision_to_that_event(world: World) -> None:
    world.alarms.set_state(OUR_ALARMS[0], "ALARM", ALARM_ENTERED + timedelta(seconds=62))

    result = run(world)

    assert result["action"] == "stale"
    assert "entered ALARM again" in result["reason"]
    assert world.emulator.update_calls == []


def test_same_episode_within_the_event_times_precision_rolls_back(world: World) -> None:
    """The edge: the alarm's timestamp is exactly one second (the slack) after the event's.
    Literal seconds, not logic.CLOCK_SLACK: a test relative to the constant moves with it."""
    world.alarms.set_state(OUR_ALARMS[0], "ALARM", ALARM_ENTERED + timedelta(seconds=1))
    assert run(world)["action"] == "rolled_back"


def test_alarm_one_millisecond_past_the_slack_is_a_later_episode(world: World) -> None:
    moment = ALARM_ENTERED + timedelta(seconds=1, milliseconds=1)
    world.alarms.set_state(OUR_ALARMS[0], "ALARM", moment)
    assert run(world)["action"] == "stale"


@pytest.mark.parametrize(
    ("transitioned", "stale"),
    [
        (ALARM_ENTERED, False),  # only the reason was refreshed an hour later: same episode
        (None, True),  # no transition time: the update time is all there is to go by
    ],
)
def test_the_episode_starts_at_the_state_transition_not_at_a_reason_update(
    transitioned: datetime | None, stale: bool
) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarm: dict[str, Any] = {
        "AlarmName": OUR_ALARMS[0],
        "StateValue": "ALARM",
        "StateUpdatedTimestamp": ALARM_ENTERED + timedelta(hours=1),
    }
    if transitioned is not None:
        alarm["StateTransitionedTimestamp"] = transitioned
    stub = Stubber(cloudwatch)
    stub.add_response(
        "describe_alarms",
        {"MetricAlarms": [alarm], "CompositeAlarms": []},
        {"AlarmNames": [OUR_ALARMS[0]], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
    )
    change = logic.parse_alarm_event(alarm_event())
    assert change is not None
    with stub:
        reason = logic.stale_reason(change, cloudwatch)
    assert (reason is not None) is stale


def test_deleted_alarm_does_not_roll_back(world: World) -> None:
    world.cloudwatch.delete_alarms(AlarmNames=[OUR_ALARMS[0]])
    result = run(world)
    assert result["action"] == "stale"
    assert "no longer exists" in result["reason"]


def test_no_previous_config_notifies_and_changes_nothing() -> None:
    with mock_aws():
        world = build_world(previous_config=None)
        result = run(world)

        assert result["action"] == "no_previous_config"
        assert world.emulator.update_calls == []
        assert world.package_status() == "Approved"
        [message] = world.messages()
        assert "no previous endpoint config" in message["Message"]


def test_already_rolled_back_is_a_no_op(world: World) -> None:
    run(world)
    world.messages()  # drain
    world.emulator.complete(ENDPOINT)
    assert world.endpoint()["EndpointConfigName"] == OLD_CONFIG

    result = run(world, alarm_event(OUR_ALARMS[1]))

    assert result["action"] == "already_rolled_back"
    assert len(world.emulator.update_calls) == 1
    assert world.messages() == []


def test_duplicate_event_during_rollback_is_a_no_op(world: World) -> None:
    first = run(world)
    world.messages()
    second = run(world)  # same event again, endpoint still Updating towards OLD_CONFIG

    assert first["action"] == "rolled_back"
    assert second["action"] == "already_rolled_back"
    assert len(world.emulator.update_calls) == 1
    assert world.messages() == []


def test_concurrent_duplicate_sees_update_in_progress(world: World) -> None:
    """Two invocations described the endpoint before either updated it."""
    seen = world.endpoint()  # InService on NEW_CONFIG, as both invocations saw it
    run(world)
    world.messages()
    stubbed_first = {**seen, "EndpointStatus": "InService"}
    calls: list[str] = []

    def stale_describe(parsed: dict[str, Any], **_: Any) -> None:
        # The second invocation's first DescribeEndpoint still sees the pre-update state.
        calls.append("describe")
        if len(calls) == 1:
            parsed.clear()
            parsed.update(stubbed_first)

    world.sagemaker.meta.events.register("after-call.sagemaker.DescribeEndpoint", stale_describe)
    result = run(world)

    assert len(world.emulator.update_calls) == 2  # second attempt refused by the service
    assert result["action"] == "already_rolled_back"
    assert world.messages() == []


def test_throttling_is_retried_by_botocore(world: World) -> None:
    throttle = Throttle(world.sagemaker, times=2, operation="UpdateModelPackage")

    result = run(world)

    assert result["action"] == "rolled_back"
    assert throttle.attempts == 4  # 2 throttled + the rejection + the notification mark
    assert world.package_status() == "Rejected"


def test_rejection_failure_still_notifies_truthfully() -> None:
    """UpdateModelPackage stays throttled past botocore's retries after the endpoint update:
    the message goes out anyway and says that rejecting failed and how to do it by hand."""
    with mock_aws():
        from botocore.config import Config

        # max_attempts counts retries: 1 attempt + 2 retries, all throttled.
        world = build_world(boto_config=Config(retries={"mode": "standard", "max_attempts": 2}))
        throttle = Throttle(world.sagemaker, times=3, operation="UpdateModelPackage")

        result = run(world)

        assert throttle.attempts == 3
        assert result["action"] == "rolled_back"
        assert result["updated_endpoint"] and result["notified"]
        assert not result["rejected_package"]
        assert "Throttling" in result["reject_error"]
        assert world.package_status() == "Approved"
        [message] = world.messages()
        assert "FAILED: Throttling" in message["Message"]
        assert "is marked Rejected" not in message["Message"]
        assert "--model-approval-status Rejected" in message["Message"]


def test_publish_failure_is_retryable_and_the_retry_notifies_once() -> None:
    """SNS refuses (throttled past retries) after the endpoint update and the rejection:
    the package is still rejected, the invocation fails, and the retry sends the message
    without a second UpdateEndpoint; a third delivery sends nothing."""
    with mock_aws():
        from botocore.config import Config

        world = build_world(boto_config=Config(retries={"mode": "standard", "max_attempts": 2}))
        throttle = Throttle(world.sns, times=3, operation="Publish")
        with pytest.raises(logic.NotificationFailed, match="publishing to"):
            run(world)
        assert throttle.attempts == 3
        assert world.package_status() == "Rejected"  # rejected before the publish
        assert len(world.emulator.update_calls) == 1
        assert world.messages() == []

        result = run(world)

        assert result["action"] == "rolled_back"
        assert result["updated_endpoint"] is False
        assert result["notified"]
        assert len(world.emulator.update_calls) == 1
        [message] = world.messages()
        assert "Re-sent by a retried invocation" in message["Message"]
        assert "was already marked Rejected" in message["Message"]

        assert run(world)["action"] == "already_rolled_back"
        assert world.messages() == []


def test_registry_access_denied_still_notifies_after_the_rollback(world: World) -> None:
    """Issue #12: DescribeModelPackage AccessDenied used to raise after the endpoint was
    rolled back, on every retry, so nobody was told."""
    registry = boto3.client("sagemaker", region_name=REGION)
    with Stubber(registry) as stub:
        stub.add_client_error(
            "describe_model_package", "AccessDeniedException", "not authorized", 400
        )
        stub.add_client_error(
            "update_model_package", "AccessDeniedException", "not authorized", 400
        )
        result = logic.handle_alarm_event(
            alarm_event(), world.config, world.sagemaker, world.sns, world.cloudwatch, registry
        )
        stub.assert_no_pending_responses()
    assert "AccessDeniedException" in result["reject_error"]
    assert result["action"] == "rolled_back" and result["notified"]
    assert world.emulator.update_calls[0]["EndpointConfigName"] == OLD_CONFIG
    [message] = world.messages()
    assert "FAILED: AccessDeniedException" in message["Message"]
    assert "reading it failed too" in message["Message"]


def test_update_endpoint_denied_is_an_error_with_nothing_half_done(world: World) -> None:
    world.emulator.refuse_with = "AccessDeniedException"
    with pytest.raises(ClientError, match="AccessDenied"):
        run(world)
    assert world.package_status() == "Approved"
    assert world.messages() == []


def test_no_previous_config_publish_failure_is_retryable() -> None:
    with mock_aws():
        from botocore.config import Config

        world = build_world(
            previous_config=None,
            boto_config=Config(retries={"mode": "standard", "max_attempts": 0}),
        )
        Throttle(world.sns, times=1, operation="Publish")
        with pytest.raises(logic.NotificationFailed):
            run(world)


@pytest.mark.parametrize(
    "event",
    [
        [],
        ["CloudWatch Alarm State Change"],
        "ALARM",
        {"detail-type": "CloudWatch Alarm State Change", "detail": "ALARM"},
        {"detail-type": "CloudWatch Alarm State Change", "detail": ["x"]},
        {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": OUR_ALARMS[0]}},
        {
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": OUR_ALARMS[0], "state": "ALARM"},
        },
        # Either of name and state value missing is enough to ignore the event.
        {
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"state": {"value": "ALARM"}},
        },
        {
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": OUR_ALARMS[0], "state": {"reason": "no value"}},
        },
    ],
)
def test_odd_events_are_ignored_not_crashed_on(event: Any) -> None:
    """Decided before any AWS call: no clients at all (a call would raise)."""
    config = logic.RollbackConfig.from_env(
        {
            "ENDPOINT_NAME": ENDPOINT,
            "ALARM_NAMES": ",".join(OUR_ALARMS),
            "CURRENT_ENDPOINT_CONFIG_NAME": NEW_CONFIG,
            "CURRENT_MODEL_PACKAGE_ARN": "arn:aws:sagemaker:us-east-1:1:model-package/g/3",
            "TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
        }
    )
    result = logic.handle_alarm_event(event, config, None, None, None)
    assert result["action"] == "ignored"
    assert not (result["updated_endpoint"] or result["notified"])


def test_event_without_timestamps_is_judged_by_the_alarms_state_only(world: World) -> None:
    event = alarm_event()
    del event["time"]
    del event["detail"]["state"]["timestamp"]
    world.alarms.set_state(OUR_ALARMS[0], "ALARM", ALARM_ENTERED + timedelta(hours=1))
    assert run(world, event)["action"] == "rolled_back"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T10:04:40.985+0000", datetime(2026, 11, 26, 10, 4, 40, 985000, tzinfo=UTC)),
        ("2026-11-26T10:04:40Z", datetime(2026, 11, 26, 10, 4, 40, tzinfo=UTC)),
        ("2026-11-26T12:04:40+0200", datetime(2026, 11, 26, 10, 4, 40, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1764151480, None),  # epoch seconds: not a timestamp this API sends, not guessed at
    ],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert logic.parse_time(text) == expected


def test_approval_descriptions_are_cut_to_the_1024_characters_sagemaker_allows() -> None:
    """The rejection and the notified mark both fit, the mark kept whole at the end."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    arn = "arn:aws:sagemaker:us-east-1:111111111111:model-package/g/3"
    config = logic.RollbackConfig.from_env(
        {
            "ENDPOINT_NAME": ENDPOINT,
            "ALARM_NAMES": OUR_ALARMS[0],
            "CURRENT_ENDPOINT_CONFIG_NAME": NEW_CONFIG,
            "CURRENT_MODEL_PACKAGE_ARN": arn,
            "TOPIC_ARN": "arn:aws:sns:us-east-1:111111111111:t",
        }
    )
    change = logic.AlarmChange("a" * 1100, "ALARM", "OK", "", "t", None)
    described = logic._rejection_description(config, change)
    mark = f" {logic.NOTIFIED_MARK} SNS message m-1"
    stub = Stubber(sagemaker)
    for description in (described[:1024], described[: 1024 - len(mark)] + mark):
        assert len(description) == 1024
        stub.add_response(
            "update_model_package",
            {"ModelPackageArn": arn},
            {
                "ModelPackageArn": arn,
                "ModelApprovalStatus": "Rejected",
                "ApprovalDescription": description,
            },
        )
    package = logic.PackageState("Approved", "", "")
    with stub:
        assert logic._reject(sagemaker, config, change) == ""
        logic._mark_notified(sagemaker, config, change, "m-1", package, "")
    stub.assert_no_pending_responses()


def test_subject_is_cut_to_the_100_characters_sns_allows() -> None:
    sns = boto3.client("sns", region_name=REGION)
    config = logic.RollbackConfig.from_env(
        {
            "ENDPOINT_NAME": ENDPOINT,
            "ALARM_NAMES": OUR_ALARMS[0],
            "CURRENT_ENDPOINT_CONFIG_NAME": NEW_CONFIG,
            "CURRENT_MODEL_PACKAGE_ARN": "arn:aws:sagemaker:us-east-1:1:model-package/g/3",
            "TOPIC_ARN": "arn:aws:sns:us-east-1:111111111111:t",
        }
    )
    stub = Stubber(sns)
    for _ in range(2):  # 101 characters are cut to 100; 100 are sent whole
        stub.add_response(
            "publish",
            {"MessageId": "m"},
            {"TopicArn": config.topic_arn, "Subject": "s" * 100, "Message": "body"},
        )
    with stub:
        for subject in ("s" * 101, "s" * 100):
            assert logic._publish(sns, config, (subject, "body")) == "m"
    stub.assert_no_pending_responses()


def test_alarm_of_another_endpoint_is_ignored(world: World) -> None:
    result = run(world, alarm_event("flight-delay-staging-5xx-rate"))

    assert result["action"] == "ignored"
    assert world.emulator.update_calls == []
    assert world.package_status() == "Approved"


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_non_alarm_states_are_ignored(world: World, state: str) -> None:
    result = run(world, alarm_event(state=state, previous="ALARM"))

    assert result["action"] == "ignored"
    assert world.emulator.update_calls == []


def test_unexpected_serving_config_is_not_rolled_back(world: World) -> None:
    world.emulator.serving[ENDPOINT] = "flight-delay-prod-hotfix"

    result = run(world)

    assert result["action"] == "unexpected_config"
    assert world.emulator.update_calls == []
    assert "neither the released" in world.messages()[0]["Message"]


def test_package_rejected_by_a_human_still_rolls_back_without_second_rejection(
    world: World,
) -> None:
    world.sagemaker.update_model_package(
        ModelPackageArn=world.package_arn, ModelApprovalStatus="Rejected"
    )
    result = run(world)

    assert result["action"] == "rolled_back"
    assert result["updated_endpoint"] and not result["rejected_package"]
    assert len(world.messages()) == 1


def test_stubbed_sagemaker_full_sequence() -> None:
    """The exact request sequence against botocore's Stubber (validates params vs. the model)."""
    sm = boto3.client("sagemaker", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    config = logic.RollbackConfig(
        endpoint_name=ENDPOINT,
        alarm_names=frozenset(OUR_ALARMS),
        previous_config_name=OLD_CONFIG,
        current_config_name=NEW_CONFIG,
        current_model_package_arn="arn:aws:sagemaker:us-east-1:222222222222:model-package/fd/3",
        topic_arn="arn:aws:sns:us-east-1:123456789012:t",
        manifest_hint="config/releases.yaml: prod",
    )
    with Stubber(sm) as sm_stub, Stubber(sns) as sns_stub, Stubber(cloudwatch) as cw_stub:
        cw_stub.add_response(
            "describe_alarms",
            {
                "MetricAlarms": [
                    {
                        "AlarmName": OUR_ALARMS[0],
                        "StateValue": "ALARM",
                        "StateTransitionedTimestamp": ALARM_ENTERED,
                    }
                ]
            },
            {"AlarmNames": [OUR_ALARMS[0]], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
        )
        sm_stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
                "EndpointConfigName": NEW_CONFIG,
                "EndpointStatus": "InService",
                "CreationTime": "2026-11-01T00:00:00Z",
                "LastModifiedTime": "2026-11-01T00:00:00Z",
            },
            {"EndpointName": ENDPOINT},
        )
        sm_stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"},
            {
                "EndpointName": ENDPOINT,
                "EndpointConfigName": OLD_CONFIG,
                "RetainAllVariantProperties": True,
                "RetainDeploymentConfig": False,
            },
        )
        sm_stub.add_response(
            "describe_model_package",
            {
                "ModelPackageName": "fd",
                "ModelPackageArn": config.current_model_package_arn,
                "CreationTime": "2026-11-01T00:00:00Z",
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": []},
                "ModelApprovalStatus": "Approved",
            },
            {"ModelPackageName": config.current_model_package_arn},
        )
        rejected = {
            "ModelPackageArn": config.current_model_package_arn,
            "ModelApprovalStatus": "Rejected",
            "ApprovalDescription": ANY,
        }
        sm_stub.add_response(
            "update_model_package", {"ModelPackageArn": config.current_model_package_arn}, rejected
        )
        sns_stub.add_response("publish", {"MessageId": "m-1"})
        sm_stub.add_response(
            "update_model_package", {"ModelPackageArn": config.current_model_package_arn}, rejected
        )
        result = logic.handle_alarm_event(alarm_event(), config, sm, sns, cloudwatch)
        sm_stub.assert_no_pending_responses()
        sns_stub.assert_no_pending_responses()
        cw_stub.assert_no_pending_responses()
    assert result["action"] == "rolled_back"


def test_registry_in_another_region_gets_the_package_calls() -> None:
    """Serving in eu-west-1, registry in us-east-1 (hub and spoke)."""
    with mock_aws():
        world = build_world()  # registry package (and an endpoint) in us-east-1
        serving = boto3.client("sagemaker", region_name="eu-west-1", config=logic.BOTO_CONFIG)
        emulator = EndpointEmulator(serving)
        serving.create_model(
            ModelName="m",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
            PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"},
        )
        for name in (OLD_CONFIG, NEW_CONFIG):
            serving.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[
                    {
                        "VariantName": "live",
                        "ModelName": "m",
                        "InitialInstanceCount": 2,
                        "InstanceType": "ml.m5.large",
                    }
                ],
            )
        serving.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=NEW_CONFIG)

        result = logic.handle_alarm_event(
            alarm_event(),
            world.config,
            serving,
            world.sns,
            world.cloudwatch,
            registry=world.sagemaker,
        )

        assert result["action"] == "rolled_back"
        assert len(emulator.update_calls) == 1
        assert world.emulator.update_calls == []  # the us-east-1 endpoint is untouched
        assert world.package_status() == "Rejected"
        assert logic.package_region(world.package_arn) == REGION


def test_config_from_env_refuses_missing_settings() -> None:
    with pytest.raises(ValueError, match="missing ENDPOINT_NAME, TOPIC_ARN"):
        logic.RollbackConfig.from_env(
            {
                "ALARM_NAMES": "a",
                "CURRENT_ENDPOINT_CONFIG_NAME": "c",
                "CURRENT_MODEL_PACKAGE_ARN": "p",
            }
        )


def test_boto_config_uses_standard_retries() -> None:
    # botocore stores max_attempts (retries) as total attempts including the first.
    assert logic.BOTO_CONFIG.retries == {"mode": "standard", "total_max_attempts": 6}


@dataclass
class FakeContext:
    function_name: str = "rollback"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:rollback"
    aws_request_id: str = "req-1"


def _wire_handler(world: World, monkeypatch: pytest.MonkeyPatch, registry: Any = None) -> None:
    """The handler's environment as the stack sets it, and the world's clients in its cache
    (registry: the client for the registry's region; the world's SageMaker by default)."""
    env = {
        "ENDPOINT_NAME": ENDPOINT,
        "ALARM_NAMES": ",".join(OUR_ALARMS),
        "PREVIOUS_ENDPOINT_CONFIG_NAME": OLD_CONFIG,
        "CURRENT_ENDPOINT_CONFIG_NAME": NEW_CONFIG,
        "CURRENT_MODEL_PACKAGE_ARN": world.package_arn,
        "TOPIC_ARN": world.config.topic_arn,
        "MANIFEST_HINT": "config/releases.yaml: prod",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    clients = {
        "sagemaker@local": world.sagemaker,
        "sns@local": world.sns,
        "cloudwatch@local": world.cloudwatch,
    }
    # the registry's region, from the ARN
    clients[f"sagemaker@{REGION}"] = registry or world.sagemaker
    monkeypatch.setattr(handler_mod, "_clients", clients)


def test_handler_wires_environment_and_clients(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _wire_handler(world, monkeypatch)

    result = handler_mod.handler(alarm_event(), FakeContext())

    assert result["action"] == "rolled_back"
    assert world.package_status() == "Rejected"
    assert _emitted_metrics(capsys) == {"rolled_back": [1.0]}

    world.emulator.complete(ENDPOINT)
    world.alarms.set_state(OUR_ALARMS[0], "OK")
    assert handler_mod.handler(alarm_event(), FakeContext())["action"] == "stale"
    assert _emitted_metrics(capsys) == {"stale": [1.0]}

    world.alarms.set_state(OUR_ALARMS[0], "ALARM")
    world.emulator.serving[ENDPOINT] = NEW_CONFIG  # a later release, now being autoscaled
    world.emulator.start_deployment(ENDPOINT, NEW_CONFIG)
    with pytest.raises(logic.EndpointBusy):
        handler_mod.handler(alarm_event(), FakeContext())
    assert _emitted_metrics(capsys) == {"Retry": [1.0]}


def test_handler_counts_a_failure_once_and_not_as_a_retry(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _wire_handler(world, monkeypatch)
    world.emulator.refuse_with = "AccessDeniedException"  # UpdateEndpoint denied
    with pytest.raises(ClientError, match="AccessDenied"):
        handler_mod.handler(alarm_event(), FakeContext())
    assert _emitted_metrics(capsys) == {"Failed": [1.0]}


def test_handler_counts_a_failed_rejection_beside_the_rollback(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = boto3.client("sagemaker", region_name=REGION)
    _wire_handler(world, monkeypatch, registry)
    with Stubber(registry) as stub:
        stub.add_client_error("describe_model_package", "AccessDeniedException", "no", 400)
        stub.add_client_error("update_model_package", "AccessDeniedException", "no", 400)
        result = handler_mod.handler(alarm_event(), FakeContext())
    assert result["action"] == "rolled_back" and result["reject_error"]
    assert _emitted_metrics(capsys) == {"rolled_back": [1.0], "RejectFailed": [1.0]}


def _emitted_metrics(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Name -> value of the metrics in the Embedded Metric Format lines the handler printed."""
    values: dict[str, Any] = {}
    for line in capsys.readouterr().out.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            values.update({m["Name"]: record[m["Name"]] for m in directive["Metrics"]})
    return values


# ---- edges: which clients in which region, the retry budget, which alarms are ours ------------


def test_handler_builds_serving_clients_locally_and_the_registry_client_in_its_region(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "ENDPOINT_NAME": ENDPOINT,
        "ALARM_NAMES": OUR_ALARMS[0],
        "PREVIOUS_ENDPOINT_CONFIG_NAME": OLD_CONFIG,
        "CURRENT_ENDPOINT_CONFIG_NAME": NEW_CONFIG,
        "CURRENT_MODEL_PACKAGE_ARN": world.package_arn,
        "TOPIC_ARN": world.config.topic_arn,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    made: dict[tuple[str, str | None], dict[str, Any]] = {}

    def client(name: str, region_name: str | None = None, **kwargs: Any) -> Any:
        made[(name, region_name)] = kwargs
        clients = {"sagemaker": world.sagemaker, "sns": world.sns, "cloudwatch": world.cloudwatch}
        return clients[name]

    monkeypatch.setattr(handler_mod, "_clients", {})
    monkeypatch.setattr(handler_mod.boto3, "client", client)

    assert handler_mod.handler(alarm_event(), FakeContext())["action"] == "rolled_back"
    assert set(made) == {
        ("sagemaker", None),
        ("sns", None),
        ("cloudwatch", None),
        ("sagemaker", REGION),
    }
    assert all(kwargs["config"] is logic.BOTO_CONFIG for kwargs in made.values())


@pytest.mark.parametrize(
    ("arn", "region"),
    [
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/3", "eu-west-1"),
        ("arn:aws:sagemaker::111111111111:model-package/g/3", None),
        ("arn:aws:sagemaker:eu-west-1:model-package", None),
        ("not-an-arn", None),
    ],
)
def test_package_region_reads_the_arns_region_field(arn: str, region: str | None) -> None:
    assert logic.package_region(arn) == region


@pytest.mark.parametrize(("throttles", "rejected"), [(5, True), (6, False)])
def test_throttling_is_absorbed_up_to_the_retry_budget_exactly(
    world: World, monkeypatch: pytest.MonkeyPatch, throttles: int, rejected: bool
) -> None:
    """1 attempt + RETRY_MAX_ATTEMPTS retries: 5 throttles are absorbed, the 6th is not (and
    then the rollback still happens and says the rejection failed)."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _s: None)  # no real backoff
    assert logic.RETRY_MAX_ATTEMPTS + 1 == 6
    Throttle(world.sagemaker, times=throttles, operation="UpdateModelPackage")
    result = run(world)
    assert result["action"] == "rolled_back" and result["notified"]
    assert result["rejected_package"] is rejected
    assert world.package_status() == ("Rejected" if rejected else "Approved")


def test_alarm_names_are_matched_exactly_after_trimming_the_list() -> None:
    config = logic.RollbackConfig.from_env(
        {
            "ENDPOINT_NAME": " e ",
            "ALARM_NAMES": " a-5xx , ,b-latency,",
            "CURRENT_ENDPOINT_CONFIG_NAME": "c",
            "CURRENT_MODEL_PACKAGE_ARN": "p",
            "TOPIC_ARN": "t",
            "PREVIOUS_ENDPOINT_CONFIG_NAME": "  ",
        }
    )
    assert config.alarm_names == {"a-5xx", "b-latency"}
    assert config.endpoint_name == "e" and config.previous_config_name is None


def test_an_alarm_whose_name_only_starts_like_ours_is_ignored(world: World) -> None:
    result = run(world, alarm_event(alarm=OUR_ALARMS[0] + "-copy"))
    assert result["action"] == "ignored"
    assert world.emulator.update_calls == [] and world.package_status() == "Approved"
