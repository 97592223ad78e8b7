"""The regional inference API in every serving stage: IAM-authenticated /predict, throttled
unauthenticated /health, a least-privilege Lambda role, the step modules it imports bundled."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import of_type
from tests.test_serving_stack import SERVING_STAGES

# API Gateway ends every integration after 29 s: a Lambda allowed longer answers nobody.
API_GATEWAY_INTEGRATION_TIMEOUT_S = 29


def _serving(templates: dict[str, Any], stage: str) -> dict[str, Any]:
    return templates[f"{stage}/Serving"]["Resources"]  # type: ignore[no-any-return]


def _api_function(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, r)
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
        and "ENDPOINT_NAME" in r["Properties"].get("Environment", {}).get("Variables", {})
        and "WEATHER_FEATURE_GROUP" in r["Properties"]["Environment"]["Variables"]
    ]
    return found


def slow_api_integrations(resources: dict[str, Any]) -> list[str]:
    """Lambdas behind an API Gateway proxy method whose timeout exceeds the gateway's."""
    functions = {
        logical_id: r["Properties"].get("Timeout", 3)
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    problems = set()
    for method in of_type(resources, "AWS::ApiGateway::Method"):
        uri = json.dumps(method["Properties"].get("Integration", {}).get("Uri", ""))
        for logical_id, timeout in functions.items():
            if f'"{logical_id}"' in uri and timeout > API_GATEWAY_INTEGRATION_TIMEOUT_S:
                problems.add(f"{logical_id}: {timeout} s")
    return sorted(problems)


@pytest.mark.parametrize("stage", SERVING_STAGES)
def test_every_serving_stage_has_a_regional_api(templates: dict[str, Any], stage: str) -> None:
    resources = _serving(templates, stage)
    (api,) = of_type(resources, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    methods = {
        (m["Properties"]["HttpMethod"], m["Properties"]["AuthorizationType"])
        for m in of_type(resources, "AWS::ApiGateway::Method")
    }
    assert methods == {("POST", "AWS_IAM"), ("GET", "NONE")}
    (stage_resource,) = of_type(resources, "AWS::ApiGateway::Stage")
    settings = {s["ResourcePath"]: s for s in stage_resource["Properties"]["MethodSettings"]}
    # The unauthenticated health path is throttled far below the API.
    assert settings["/~1health"]["ThrottlingRateLimit"] <= 5
    assert settings["/*"]["ThrottlingRateLimit"] > settings["/~1health"]["ThrottlingRateLimit"]
    assert settings["/*"]["DataTraceEnabled"] is False
    assert stage_resource["Properties"]["TracingEnabled"] is True


def test_the_lambda_knows_no_release_the_models_name_themselves(
    templates: dict[str, Any],
) -> None:
    """The answer's version comes from the model's own answer (each model's container names
    its release: test_served_version.py), so deploying a release leaves the function alone."""
    for stage in ("prod-us-east-1", "staging-eu-west-1", "dev-us-east-1"):
        template = _serving(templates, stage)
        _, function = _api_function(template)
        variables = dict(function["Properties"]["Environment"]["Variables"])
        env = stage.split("-")[0]
        assert variables == {
            "POWERTOOLS_SERVICE_NAME": "inference_api",
            "ENDPOINT_NAME": f"flightdelay-{env}",
            "WEATHER_FEATURE_GROUP": f"flightdelay-{env}-weather",
            "PLANE_FEATURE_GROUP": f"flightdelay-{env}-plane",
        }


def test_the_lambda_role_reads_two_online_stores_and_invokes_one_endpoint(
    templates: dict[str, Any],
) -> None:
    resources = _serving(templates, "prod-eu-west-1")
    _, function = _api_function(resources)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action: dict[str, list[Any]] = {}
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources_of = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for action in actions:
            by_action.setdefault(action, []).extend(resources_of)
    sagemaker_actions = sorted(a for a in by_action if a.startswith("sagemaker:"))
    assert sagemaker_actions == [
        "sagemaker:BatchGetRecord",
        "sagemaker:GetRecord",
        "sagemaker:InvokeEndpoint",
    ]
    rendered = json.dumps(by_action["sagemaker:BatchGetRecord"])
    assert "feature-group/flightdelay-prod-weather" in rendered
    assert "feature-group/flightdelay-prod-plane" in rendered
    assert 'flight"' not in rendered and "*" not in rendered
    assert "endpoint/flightdelay-prod" in json.dumps(by_action["sagemaker:InvokeEndpoint"])
    assert "*" not in json.dumps(by_action["sagemaker:InvokeEndpoint"])
    assert "kms:Decrypt" in by_action and "kms:Encrypt" not in by_action


def test_the_bundle_carries_the_step_modules_it_imports(
    assembly_dir: Path, templates: dict[str, Any]
) -> None:
    _, function = _api_function(_serving(templates, "prod-us-east-1"))
    asset = function["Metadata"]["aws:asset:path"]
    folders = [p for p in assembly_dir.rglob(asset) if p.is_dir()]
    assert folders, asset
    names = {p.name for p in folders[0].iterdir()}
    assert {
        "handler.py",
        "front_door.py",
        "online_store.py",
        "feature_schema.py",
        "feature_records.py",
    } <= names


def test_api_lambdas_answer_within_the_gateway_timeout(templates: dict[str, Any]) -> None:
    for stage in SERVING_STAGES:
        assert slow_api_integrations(_serving(templates, stage)) == []


def test_the_timeout_check_can_fail(templates: dict[str, Any]) -> None:
    resources = copy.deepcopy(_serving(templates, "prod-us-east-1"))
    logical_id, function = _api_function(resources)
    function["Properties"]["Timeout"] = 60
    assert slow_api_integrations(resources) == [f"{logical_id}: 60 s"]


def test_only_a_stage_that_manages_it_sets_the_accounts_api_gateway_logging_role(
    templates: dict[str, Any],
) -> None:
    """AWS::ApiGateway::Account is one setting per account and region: dev's config says
    "managed" (the stack creates the role and sets it), prod and staging leave the default
    "existing" (no Account resource, no role: the account's own setting is kept)."""
    for stage, managed in (
        ("dev-us-east-1", True),
        ("staging-eu-west-1", False),
        ("prod-us-east-1", False),
    ):
        resources = _serving(templates, stage)
        accounts = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Account"]
        roles = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Role"
            and "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(r["Properties"])
        ]
        assert len(accounts) == len(roles) == (1 if managed else 0), stage
        # Kept when the stack goes: the account setting would still name a deleted role.
        assert all(r.get("DeletionPolicy") == "Retain" for r in roles), stage
