"""The model-staging custom resource against moto's S3 (two regions, KMS)."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from unittest import mock

import boto3
import pytest
from helpers import load_lambda_module
from moto import mock_aws

ARTIFACT = b"model.tar.gz bytes"
KEY = "training-pipeline/models/pipelines-1-Train/output/model.tar.gz"


staging = load_lambda_module("stage_model", "staging", "stage_model_staging")
handler = load_lambda_module("stage_model", "handler", "stage_model_handler")


@pytest.fixture()
def buckets() -> Any:
    with mock_aws():
        hub = boto3.client("s3", region_name="us-east-1")
        hub.create_bucket(Bucket="hub-artifacts")
        hub.put_object(Bucket="hub-artifacts", Key=KEY, Body=ARTIFACT)
        spoke = boto3.client("s3", region_name="eu-west-1")
        spoke.create_bucket(
            Bucket="spoke-models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        key_id = boto3.client("kms", region_name="eu-west-1").create_key()["KeyMetadata"]["Arn"]
        yield hub, spoke, key_id


def _request(key_id: str, sha: str | None = None) -> Any:
    return staging.StagingRequest(
        source_bucket="hub-artifacts",
        destination_bucket="spoke-models",
        key=KEY,
        sha256=sha or hashlib.sha256(ARTIFACT).hexdigest(),
        destination_kms_key=key_id,
    )


def test_a_missing_artifact_is_copied_verified_and_encrypted(buckets: Any) -> None:
    hub, spoke, key_id = buckets
    assert staging.stage_model(hub, spoke, _request(key_id)) == {
        "Action": "copied",
        "Sha256": hashlib.sha256(ARTIFACT).hexdigest(),
    }
    copied = spoke.get_object(Bucket="spoke-models", Key=KEY)
    assert copied["Body"].read() == ARTIFACT
    assert copied["ServerSideEncryption"] == "aws:kms"
    assert copied["Metadata"]["sha256"] == hashlib.sha256(ARTIFACT).hexdigest()
    # Idempotent: a second deployment finds it in place.
    assert staging.stage_model(hub, spoke, _request(key_id))["Action"] == "present"


def test_an_artifact_that_is_not_the_pinned_one_is_refused(buckets: Any) -> None:
    hub, spoke, key_id = buckets
    with pytest.raises(staging.ArtifactMismatch, match="the release manifest pins"):
        staging.stage_model(hub, spoke, _request(key_id, sha="0" * 64))
    assert spoke.list_objects_v2(Bucket="spoke-models").get("KeyCount") == 0


def test_the_handler_reports_to_cloudformation_both_ways(buckets: Any) -> None:
    _, _, key_id = buckets
    event = {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-response.example/",
        "StackId": "stack",
        "RequestId": "request",
        "LogicalResourceId": "ModelStaging",
        "ResourceProperties": {
            "SourceBucket": "hub-artifacts",
            "SourceRegion": "us-east-1",
            "DestinationBucket": "spoke-models",
            "Key": KEY,
            "Sha256": hashlib.sha256(ARTIFACT).hexdigest(),
            "DestinationKmsKey": key_id,
        },
    }
    sent: list[dict[str, Any]] = []

    def capture(request: Any, timeout: int) -> Any:
        sent.append(json.loads(request.data))
        return mock.MagicMock()

    with (
        mock.patch.object(handler.urllib.request, "urlopen", side_effect=capture),
        mock.patch.dict("os.environ", {"AWS_REGION": "eu-west-1"}),
    ):
        handler.handler(event, None)
        handler.handler(
            {**event, "ResourceProperties": {**event["ResourceProperties"], "Sha256": "1" * 64}},
            None,
        )
    assert [s["Status"] for s in sent] == ["SUCCESS", "FAILED"]
    assert sent[0]["Data"] == {"Action": "copied", "Sha256": hashlib.sha256(ARTIFACT).hexdigest()}
    assert sent[0]["PhysicalResourceId"] == f"spoke-models/{KEY}"
    assert "release manifest pins" in sent[1]["Reason"]
