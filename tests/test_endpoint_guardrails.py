"""The endpoint's guardrail values, per stage, as the config asks for them: capture sampling
and options, the autoscaling target, the blue/green waits and limits, the alarms watched."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.config import DeploymentConfig, PlatformConfig
from mlops.constructs.realtime_endpoint import MAX_EXECUTION_TIMEOUT_S, traffic_shift
from tests.conftest import of_type

INSTANCE_STAGES = [
    "staging-us-east-1",
    "staging-eu-west-1",
    "prod-us-east-1",
    "prod-eu-west-1",
    "prod-ap-southeast-1",
]


def _resources(templates: dict[str, Any], stage: str) -> dict[str, Any]:
    return templates[f"{stage}/Serving"]["Resources"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("stage", INSTANCE_STAGES)  # dev is serverless: no capture
def test_every_request_and_response_is_captured_as_csv(
    templates: dict[str, Any], stage: str
) -> None:
    for config in of_type(_resources(templates, stage), "AWS::SageMaker::EndpointConfig"):
        capture = config["Properties"]["DataCaptureConfig"]
        assert capture["InitialSamplingPercentage"] == 100  # drift needs every record
        modes = sorted(o["CaptureMode"] for o in capture["CaptureOptions"])
        assert modes == ["Input", "Output"]  # model quality needs the predictions too
        assert capture["CaptureContentTypeHeader"] == {"CsvContentTypes": ["text/csv"]}


@pytest.mark.parametrize("stage", INSTANCE_STAGES)
def test_autoscaling_targets_the_configured_invocations_per_instance(
    templates: dict[str, Any], platform: PlatformConfig, stage: str
) -> None:
    serving = platform.environment(stage.split("-")[0]).serving
    resources = _resources(templates, stage)
    (target,) = of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (
        serving.min_capacity,
        serving.max_capacity,
    )
    (policy,) = of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy")
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == serving.invocations_per_instance_target


@pytest.mark.parametrize("stage", INSTANCE_STAGES)
def test_the_blue_fleet_waits_one_bake_and_rollback_watches_errors_and_latency(
    templates: dict[str, Any], platform: PlatformConfig, stage: str
) -> None:
    env = platform.environment(stage.split("-")[0])
    resources = _resources(templates, stage)
    (endpoint,) = of_type(resources, "AWS::SageMaker::Endpoint")
    config = endpoint["Properties"]["DeploymentConfig"]
    policy = config["BlueGreenUpdatePolicy"]
    assert policy["TerminationWaitInSeconds"] == env.deployment.bake_minutes * 60
    assert policy["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"] == (
        env.deployment.bake_minutes * 60
    )
    alarms = {k: r["Properties"] for k, r in resources.items() if r["Type"].endswith("::Alarm")}
    watched = sorted(
        (alarms[ref["AlarmName"]["Ref"]]["MetricName"], alarms[ref["AlarmName"]["Ref"]]["Period"])
        for ref in config["AutoRollbackConfiguration"]["Alarms"]
    )
    periods = sorted({60, env.alarms.rollback_metric_seconds})  # 10: the fast alarms too
    assert watched == sorted(
        (m, p) for m in ("Invocation5XXErrors", "ModelLatency") for p in periods
    )
    for ref in config["AutoRollbackConfiguration"]["Alarms"]:
        props = alarms[ref["AlarmName"]["Ref"]]
        expected = {
            "Invocation5XXErrors": env.alarms.error_rate_5xx,
            "ModelLatency": env.alarms.latency_p99_ms * 1000,  # µs
        }
        assert props["Threshold"] == expected[props["MetricName"]]


def _linear(step: int, bake: int) -> DeploymentConfig:
    return DeploymentConfig(
        strategy="linear", canary_percent=10, linear_step_percent=step, bake_minutes=bake
    )


HEADROOM_S = 1800  # provisioning the green fleet before the first shift


@pytest.mark.parametrize(("step", "shifts"), [(25, 4), (33, 4), (34, 3), (50, 2), (10, 10)])
def test_linear_shifts_round_up_so_the_last_step_reaches_100_percent(
    step: int, shifts: int
) -> None:
    shift = traffic_shift(_linear(step, bake=1), fleet_size=4)
    assert shift.maximum_execution_timeout_s == shifts * 60 + 60 + HEADROOM_S
    assert shift.routing.linear_step_size.value == step  # type: ignore[union-attr]


def test_a_deployment_taking_exactly_the_sagemaker_maximum_is_allowed_one_minute_more_not() -> None:
    # 4 linear shifts of 90 minutes + a 90 minute termination wait + 30 minutes = 8 hours
    exact = traffic_shift(_linear(25, 90), fleet_size=4)
    assert exact.maximum_execution_timeout_s == MAX_EXECUTION_TIMEOUT_S == 28800
    with pytest.raises(ValueError, match=r"deployment takes 29100 s.*at most 28800 s"):
        traffic_shift(_linear(25, 91), fleet_size=4)


def test_canary_bakes_twice_then_waits_once() -> None:
    canary = DeploymentConfig(
        strategy="canary", canary_percent=10, linear_step_percent=20, bake_minutes=15
    )
    shift = traffic_shift(canary, fleet_size=2)  # the smallest fleet a canary can split
    assert shift.routing.type == "CANARY"
    assert shift.termination_wait_s == 900
    assert shift.maximum_execution_timeout_s == 2 * 900 + 900 + HEADROOM_S
    single = traffic_shift(canary, fleet_size=1)
    assert single.routing.type == "ALL_AT_ONCE"
    assert single.maximum_execution_timeout_s == 900 + 900 + HEADROOM_S
