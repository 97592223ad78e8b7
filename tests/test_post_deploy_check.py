"""Post-deploy check against botocore's Stubber: silent rollback, waiting, sample invocation."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from mlops.post_deploy_check import check_endpoint, invoke_sample, main

NAME = "flight-delay-prod"
EXPECTED = "flight-delay-prod-v3"


def client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def describe(status: str, config: str = EXPECTED, **extra: Any) -> dict[str, Any]:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    return {
        "EndpointName": NAME,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{NAME}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": now,
        "LastModifiedTime": now,
        **extra,
    }


@pytest.fixture
def sm() -> Iterator[tuple[Any, Stubber]]:
    c = client("sagemaker")
    with Stubber(c) as stub:
        yield c, stub
        stub.assert_no_pending_responses()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_inservice_on_expected_config_passes(sm: tuple[Any, Stubber]) -> None:
    c, stub = sm
    stub.add_response("describe_endpoint", describe("InService"), {"EndpointName": NAME})
    result = check_endpoint(c, NAME, EXPECTED)
    assert result.ok and result.config_name == EXPECTED


def test_silent_rollback_fails(sm: tuple[Any, Stubber]) -> None:
    c, stub = sm
    stub.add_response("describe_endpoint", describe("InService", "flight-delay-prod-v2"))
    result = check_endpoint(c, NAME, EXPECTED)
    assert not result.ok
    assert "InService on flight-delay-prod-v2, expected flight-delay-prod-v3" in result.message


def test_waits_while_updating_then_checks(sm: tuple[Any, Stubber]) -> None:
    c, stub = sm
    stub.add_response("describe_endpoint", describe("Updating", "flight-delay-prod-v2"))
    stub.add_response("describe_endpoint", describe("Updating", "flight-delay-prod-v2"))
    stub.add_response("describe_endpoint", describe("InService"))
    clock = FakeClock()
    result = check_endpoint(
        c, NAME, EXPECTED, wait_seconds=100, poll_seconds=30, sleep=clock.sleep, clock=clock
    )
    assert result.ok
    assert clock.sleeps == [30, 30]


def test_still_updating_after_wait_fails(sm: tuple[Any, Stubber]) -> None:
    c, stub = sm
    for _ in range(3):
        stub.add_response("describe_endpoint", describe("Updating"))
    clock = FakeClock()
    result = check_endpoint(
        c, NAME, EXPECTED, wait_seconds=50, poll_seconds=30, sleep=clock.sleep, clock=clock
    )
    assert not result.ok
    assert result.message.endswith(
        "is Updating after waiting 50 s, expected InService on flight-delay-prod-v3"
    )
    assert clock.sleeps == [30, 20]


def test_failed_endpoint_fails_at_once_with_reason(sm: tuple[Any, Stubber]) -> None:
    c, stub = sm
    stub.add_response("describe_endpoint", describe("Failed", FailureReason="image not found"))
    clock = FakeClock()
    result = check_endpoint(c, NAME, EXPECTED, wait_seconds=600, sleep=clock.sleep, clock=clock)
    assert not result.ok and "is Failed (image not found)" in result.message
    assert clock.sleeps == []


def runtime_with(body: str, rows: str = "1,2\n3,4\n") -> tuple[Any, Stubber]:
    c = client("sagemaker-runtime")
    stub = Stubber(c)
    raw = body.encode()
    stub.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "text/csv"},
        {
            "EndpointName": NAME,
            "ContentType": "text/csv",
            "Accept": "text/csv",
            "Body": rows.strip().encode(),
        },
    )
    stub.activate()
    return c, stub


@pytest.mark.parametrize(
    ("body", "ok", "fragment"),
    [
        # One line per row: the probability, then the version that scored it.
        ("0.120000,3\n0.870000,3\n", True, "scored 2 sample rows"),
        ("0.12\n0.87\n", True, "scored 2 sample rows"),  # a model that names no version
        ("0.12,3\n1.7,3\n", False, "returned 1.7, not a probability"),
        ("0.12\nnan\n", False, "returned nan"),
        ("0.12,0.87", False, "returned 1 scores for 2 rows"),  # the version is not a score
        ("0.12", False, "returned 1 scores for 2 rows"),
        ("<html>", False, "non-numeric"),
    ],
)
def test_invoke_sample_checks_probabilities(body: str, ok: bool, fragment: str) -> None:
    c, stub = runtime_with(body)
    result = invoke_sample(c, NAME, "1,2\n3,4\n")
    assert result.ok is ok
    assert fragment in result.message
    stub.assert_no_pending_responses()


def test_main_ok_and_one_line_errors(
    sm: tuple[Any, Stubber], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c, stub = sm
    stub.add_response("describe_endpoint", describe("InService"))
    sample = tmp_path / "sample.csv"
    sample.write_text("1,2\n3,4\n")
    runtime, runtime_stub = runtime_with("0.100000,2\n0.200000,2\n")
    argv = ["--endpoint-name", NAME, "--expected-config", EXPECTED, "--invoke-sample", str(sample)]
    assert main(argv, sagemaker_client=c, runtime_client=runtime) == 0
    assert capsys.readouterr().out == f"OK: endpoint {NAME} scored 2 sample rows\n"
    runtime_stub.assert_no_pending_responses()

    stub.add_response("describe_endpoint", describe("InService", "flight-delay-prod-v2"))
    assert main(argv[:4], sagemaker_client=c) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: endpoint flight-delay-prod is InService on flight-delay-prod-v2")
    assert err.count("\n") == 1

    stub.add_client_error(
        "describe_endpoint", "ValidationException", "Could not find endpoint", 400
    )
    assert main(argv[:4], sagemaker_client=c) == 1
    assert "Could not find endpoint" in capsys.readouterr().err

    assert main([*argv[:4], "--invoke-sample", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err.startswith("ERROR: --invoke-sample")
