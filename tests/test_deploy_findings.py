"""Issue #11's likely findings, each fixed or refused at synth: traffic shifting on small
fleets, the documented linear step range, blue/green timeouts, and the instance-type change
procedure (`serving.autoscaling: false` deregisters the scalable target)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.app_builder import AppOptions
from mlops.config import ConfigError, DeploymentConfig, PlatformConfig, parse_config
from mlops.constructs.realtime_endpoint import (
    MAX_EXECUTION_TIMEOUT_S,
    PROVISIONING_HEADROOM_S,
    traffic_shift,
)
from tests.conftest import ROOT, stack_templates, synth_app

LINEAR = DeploymentConfig(
    strategy="linear", canary_percent=10, linear_step_percent=25, bake_minutes=5
)


def _routing_type(fleet_size: int, deployment: DeploymentConfig = LINEAR) -> str:
    routing = traffic_shift(deployment, fleet_size).routing
    return str(routing.type)


def test_one_instance_shifts_all_at_once_and_two_follow_the_policy() -> None:
    assert _routing_type(1) == "ALL_AT_ONCE"
    assert _routing_type(2) == "LINEAR"
    canary = dataclasses.replace(LINEAR, strategy="canary")
    assert _routing_type(1, canary) == "ALL_AT_ONCE"
    assert _routing_type(2, canary) == "CANARY"


def test_one_instance_still_bakes_under_the_alarms() -> None:
    shift = traffic_shift(LINEAR, 1)
    assert shift.routing.wait_interval_in_seconds == 300
    assert shift.maximum_execution_timeout_s == 300 + 300 + PROVISIONING_HEADROOM_S


def test_timeout_budget_uses_the_documented_maximum() -> None:
    assert MAX_EXECUTION_TIMEOUT_S == 28800  # API_BlueGreenUpdatePolicy: 600-28800 s
    slow = dataclasses.replace(LINEAR, linear_step_percent=10, bake_minutes=60)
    # 10 shifts x 3600 + 3600 + headroom: beyond 28800, refused with a one-line reason
    with pytest.raises(ValueError, match="SageMaker allows at most 28800 s"):
        traffic_shift(slow, 4)
    fits = dataclasses.replace(LINEAR, linear_step_percent=20, bake_minutes=60)
    assert traffic_shift(fits, 4).maximum_execution_timeout_s == 5 * 3600 + 3600 + 1800


def _config_with(step: int) -> PlatformConfig:
    data = yaml.safe_load((ROOT / "config" / "environments.yaml").read_text())
    data["environments"]["staging"]["deployment"]["linear_step_percent"] = step
    return parse_config(yaml.safe_dump(data), "environments.yaml")


def test_linear_steps_follow_the_api_range_10_to_50() -> None:
    assert _config_with(10).environment("staging").deployment.linear_step_percent == 10
    assert _config_with(50).environment("staging").deployment.linear_step_percent == 50
    for bad in (9, 51):
        with pytest.raises(ConfigError, match="linear_step_percent"):
            _config_with(bad)


def test_autoscaling_off_deregisters_the_scalable_target(
    tmp_path: Path, platform: PlatformConfig, templates: dict[str, Any]
) -> None:
    """Step 1 of the instance-type change: without the target, UpdateEndpoint may change it."""
    staging = platform.environment("staging")
    off = dataclasses.replace(
        staging, serving=dataclasses.replace(staging.serving, autoscaling=False)
    )
    changed = dataclasses.replace(platform, environments={**platform.environments, "staging": off})
    options = AppOptions(only_environment="staging", with_delivery_pipeline=False)
    switched_off = stack_templates(Path(synth_app(changed, tmp_path, options).directory))
    serving = switched_off["staging-us-east-1/Serving"]["Resources"]
    kinds = {r["Type"] for r in serving.values()}
    assert "AWS::SageMaker::Endpoint" in kinds
    assert "AWS::ApplicationAutoScaling::ScalableTarget" not in kinds
    # Nothing to retain: this deploy applies instance type, count and data capture in full.
    (endpoint,) = [r for r in serving.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    assert endpoint["Properties"]["RetainAllVariantProperties"] is False
    # The committed config (the session's whole-app synth) keeps both.
    committed = templates["staging-us-east-1/Serving"]["Resources"]
    assert "AWS::ApplicationAutoScaling::ScalableTarget" in {r["Type"] for r in committed.values()}
    (endpoint,) = [r for r in committed.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    assert endpoint["Properties"]["RetainAllVariantProperties"] is True
