"""find_incumbent Lambda: the plain choice function and the registry lookup against moto."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from helpers import load_lambda_module

CANDIDATE = "s3://artifacts/pipelines/run-9/model.tar.gz"
GROUP = "flight-delay"


fi = load_lambda_module("find_incumbent", "handler", "find_incumbent_handler")


def test_no_packages_compares_candidate_with_itself() -> None:
    assert fi.choose_incumbent([], CANDIDATE) == {
        "IncumbentModelUrl": CANDIDATE,
        "HasIncumbent": "false",
        "IncumbentModelPackageArn": "",
    }


def test_only_unapproved_packages_means_no_incumbent() -> None:
    packages = [
        {
            "status": "PendingManualApproval",
            "model_data_url": "s3://a/1",
            "created_at": "2026-01-01",
        },
        {"status": "Rejected", "model_data_url": "s3://a/2", "created_at": "2026-02-01"},
    ]
    assert fi.choose_incumbent(packages, CANDIDATE)["HasIncumbent"] == "false"


def test_newest_approved_wins_across_time_zones_and_versions() -> None:
    packages = [
        # 2026-03-01T01:00+02:00 is 2026-02-28T23:00Z: older than v2 despite the later date.
        {
            "version": 3,
            "status": "Approved",
            "model_data_url": "s3://a/3",
            "created_at": "2026-03-01T01:00:00+02:00",
        },
        {
            "version": 2,
            "status": "Approved",
            "model_data_url": "s3://a/2",
            "created_at": "2026-02-28T23:30:00Z",
        },
        {
            "version": 4,
            "status": "Rejected",
            "model_data_url": "s3://a/4",
            "created_at": "2026-04-01T00:00:00Z",
        },
    ]
    result = fi.choose_incumbent(packages, CANDIDATE)
    assert result["IncumbentModelUrl"] == "s3://a/2"
    assert result["HasIncumbent"] == "true"
    assert result["IncumbentModelPackageArn"] == ""  # local packages carry no ARN


def test_same_timestamp_breaks_tie_by_version() -> None:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    packages = [
        {"version": 7, "status": "Approved", "model_data_url": "s3://a/7", "created_at": when},
        {"version": 8, "status": "Approved", "model_data_url": "s3://a/8", "created_at": when},
    ]
    assert fi.choose_incumbent(packages, CANDIDATE)["IncumbentModelUrl"] == "s3://a/8"


@pytest.fixture
def sagemaker(moto_sagemaker: Any) -> Any:
    moto_sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    return moto_sagemaker


def _register(client: Any, version: int, status: str) -> str:
    return str(
        client.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": "xgb", "ModelDataUrl": f"s3://art/v{version}.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
    )


def test_lambda_returns_latest_approved_from_registry(sagemaker: Any) -> None:
    _register(sagemaker, 1, "Approved")
    arn2 = _register(sagemaker, 2, "Approved")
    _register(sagemaker, 3, "PendingManualApproval")
    _register(sagemaker, 4, "Rejected")

    event = {"ModelPackageGroupName": GROUP, "CandidateModelUrl": CANDIDATE}
    assert fi.find_incumbent(sagemaker, event) == {
        "IncumbentModelUrl": "s3://art/v2.tar.gz",
        "HasIncumbent": "true",
        "IncumbentModelPackageArn": arn2,
    }


def test_lambda_without_approved_package_uses_candidate(sagemaker: Any) -> None:
    _register(sagemaker, 1, "PendingManualApproval")
    event = {"ModelPackageGroupName": GROUP, "CandidateModelUrl": CANDIDATE}
    result = fi.find_incumbent(sagemaker, event)
    assert result["HasIncumbent"] == "false"
    assert result["IncumbentModelUrl"] == CANDIDATE


def test_lambda_sends_the_exact_list_request() -> None:
    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "list_model_packages",
            {"ModelPackageSummaryList": []},
            {
                "ModelPackageGroupName": GROUP,
                "ModelApprovalStatus": "Approved",
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 1,
            },
        )
        result = fi.find_incumbent(
            client, {"ModelPackageGroupName": GROUP, "CandidateModelUrl": CANDIDATE}
        )
        stub.assert_no_pending_responses()
    assert result["HasIncumbent"] == "false"


def test_event_without_group_is_refused() -> None:
    with pytest.raises(ValueError, match="ModelPackageGroupName"):
        fi.find_incumbent(None, {"CandidateModelUrl": CANDIDATE})


def test_the_handler_accepts_the_event_the_pipeline_step_sends() -> None:
    """The Lambda step's Arguments, exactly as build_definition writes them, are the event."""
    from mlops.pipeline_definition.training_pipeline import STEP_FIND_INCUMBENT, build_definition
    from tests.test_pipeline_definition import make_spec

    definition = build_definition(make_spec())
    (step,) = [s for s in definition["Steps"] if s["Name"] == STEP_FIND_INCUMBENT]
    event = {
        key: (value if isinstance(value, str) else "s3://bucket/candidate/model.tar.gz")
        for key, value in step["Arguments"].items()
    }
    group, candidate = fi.parse_event(event)
    assert group == step["Arguments"]["ModelPackageGroupName"]
    assert candidate == "s3://bucket/candidate/model.tar.gz"


def test_an_offset_timestamp_is_compared_in_utc_with_a_naive_one() -> None:
    """10:00+02:00 is 08:00 UTC: the naive (UTC) 09:00 package is the newer one."""
    packages = [
        {
            "status": "Approved",
            "model_data_url": "s3://b/aware",
            "created_at": "2026-11-26T10:00:00+02:00",
        },
        {
            "status": "Approved",
            "model_data_url": "s3://b/naive",
            "created_at": "2026-11-26T09:00:00",
        },
    ]
    assert fi.choose_incumbent(packages, CANDIDATE)["IncumbentModelUrl"] == "s3://b/naive"
