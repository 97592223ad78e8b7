"""Odd input at the Lambdas' boundaries (issue #12): a malformed event is answered or
refused in one clear line, never a crash that leaves CloudFormation or a pipeline waiting."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber

LAMBDA = Path(__file__).resolve().parents[1] / "lambda"


def _load(folder: str, module: str) -> ModuleType:
    path = LAMBDA / folder
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    spec = importlib.util.spec_from_file_location(f"odd_{folder}_{module}", path / f"{module}.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


stage_handler = _load("stage_model", "handler")
incumbent = _load("find_incumbent", "handler")
gate_handler = _load("retrain_gate", "handler")

CFN_BASE = {
    "ResponseURL": "https://cloudformation-response.example/",
    "StackId": "stack",
    "RequestId": "request",
    "LogicalResourceId": "ModelStagingV3",
}


def _responses(event: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def capture(request: Any, timeout: int) -> Any:
        sent.append(json.loads(request.data))
        return mock.MagicMock()

    with mock.patch.object(stage_handler.urllib.request, "urlopen", side_effect=capture):
        stage_handler.handler(event, None)
    return sent


@pytest.mark.parametrize(
    "event",
    [
        {**CFN_BASE, "RequestType": "Create"},  # no ResourceProperties at all
        {**CFN_BASE, "RequestType": "Update", "ResourceProperties": None},
        {**CFN_BASE, "RequestType": "Create", "ResourceProperties": ["Key"]},
        {**CFN_BASE, "ResourceProperties": {}},  # no RequestType
        {**CFN_BASE, "RequestType": "Create", "ResourceProperties": {"Key": "x"}},
    ],
)
def test_a_malformed_custom_resource_event_still_gets_failed(event: dict[str, Any]) -> None:
    """Without a response CloudFormation waits an hour for the custom resource."""
    [response] = _responses(event)
    assert response["Status"] == "FAILED"
    assert response["RequestId"] == "request"
    assert response["LogicalResourceId"] == "ModelStagingV3"
    assert response["PhysicalResourceId"]
    assert response["Reason"]


def test_a_delete_without_properties_succeeds() -> None:
    [response] = _responses({**CFN_BASE, "RequestType": "Delete", "PhysicalResourceId": "b/k"})
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", "b/k")


@pytest.mark.parametrize("inference", [None, {"Containers": [{"Image": "i"}]}])
def test_an_incumbent_without_a_model_artifact_fails_the_step_in_one_line(
    inference: dict[str, Any] | None,
) -> None:
    client = boto3.client("sagemaker", region_name="us-east-1")
    arn = "arn:aws:sagemaker:us-east-1:222222222222:model-package/flightdelay-dev/4"
    package: dict[str, Any] = {
        "ModelPackageName": "flightdelay-dev",
        "ModelPackageArn": arn,
        "CreationTime": "2026-11-01T00:00:00Z",
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
    }
    if inference is not None:
        package["InferenceSpecification"] = {
            **inference,
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        }
    with Stubber(client) as stub:
        stub.add_response(
            "list_model_packages",
            {
                "ModelPackageSummaryList": [
                    {
                        "ModelPackageArn": arn,
                        "CreationTime": "2026-11-01T00:00:00Z",
                        "ModelPackageStatus": "Completed",
                    }
                ]
            },
        )
        stub.add_response("describe_model_package", package)
        with pytest.raises(ValueError, match=r"incumbent .*/4 has no inference container"):
            incumbent.find_incumbent(
                client,
                {"ModelPackageGroupName": "flightdelay-dev", "CandidateModelUrl": "s3://b/m"},
            )


@pytest.mark.parametrize(
    "event",
    [
        [],
        [{"detail": {}}],
        "ALARM",
        {"detail": "ALARM"},
        {"detail": {"state": "ALARM"}},
        {"detail-type": "CloudWatch Alarm State Change"},
    ],
)
def test_the_retrain_gate_answers_odd_events_without_calling_aws(
    event: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_aws(*_: Any, **__: Any) -> None:
        raise AssertionError("an odd event must not reach AWS")

    monkeypatch.setattr(gate_handler.boto3, "client", no_aws)
    context = SimpleNamespace(
        function_name="gate", memory_limit_in_mb=256, aws_request_id="r1",
        invoked_function_arn="arn:aws:lambda:eu-west-1:444444444444:function:gate",
    )  # fmt: skip
    result = gate_handler.handler(event, context)
    assert result == {
        "started": False,
        "reason": 'neither a CloudWatch alarm state change nor a recheck event ({"gate": "recheck"})',
    }
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    [directive] = emitted[-1]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "mlops/retrain_gate"
    assert [m["Name"] for m in directive["Metrics"]] == ["Ignored"]
    assert emitted[-1]["Ignored"] == [1.0]  # one event, counted once


def test_the_gate_boundary_accepts_the_documented_alarm_event_and_the_recheck() -> None:
    assert gate_handler.is_gate_event({"detail": {"state": {"value": "ALARM"}}})
    assert gate_handler.is_gate_event({"gate": "recheck", "time": "2026-11-26T12:00:00Z"})
    assert not gate_handler.is_gate_event({"gate": "something else"})
