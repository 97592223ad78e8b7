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


SHA = hashlib.sha256(ARTIFACT).hexdigest()
STAGED = f"models/sha256/{SHA}/model.tar.gz"
TAMPERED = b"someone else's model"


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
        spoke.put_bucket_versioning(
            Bucket="spoke-models", VersioningConfiguration={"Status": "Enabled"}
        )
        key_id = boto3.client("kms", region_name="eu-west-1").create_key()["KeyMetadata"]["Arn"]
        yield hub, spoke, key_id


def _request(key_id: str, sha: str = SHA) -> Any:
    return staging.StagingRequest(
        source_bucket="hub-artifacts",
        destination_bucket="spoke-models",
        key=KEY,
        staged_key=f"models/sha256/{sha}/model.tar.gz",
        sha256=sha,
        destination_kms_key=key_id,
    )


def _staged(spoke: Any) -> tuple[bytes, str]:
    copy = spoke.get_object(Bucket="spoke-models", Key=STAGED)
    return copy["Body"].read(), copy["VersionId"]


def test_without_a_replica_the_hub_copy_is_verified_and_staged_encrypted(buckets: Any) -> None:
    hub, spoke, key_id = buckets
    result = staging.stage_model(hub, spoke, _request(key_id))
    assert (result["Action"], result["Sha256"]) == ("copied-from-hub", SHA)
    copied = spoke.get_object(Bucket="spoke-models", Key=STAGED)
    assert copied["Body"].read() == ARTIFACT
    assert copied["ServerSideEncryption"] == "aws:kms"
    assert result["VersionId"] == copied["VersionId"]
    # Idempotent: a second deployment hashes the staged copy and leaves it alone.
    again = staging.stage_model(hub, spoke, _request(key_id))
    assert again == {"Action": "present", "Sha256": SHA, "VersionId": result["VersionId"]}
    assert len(spoke.list_object_versions(Bucket="spoke-models")["Versions"]) == 1


def test_a_verified_regional_replica_is_preferred_to_the_hub(buckets: Any) -> None:
    hub, spoke, key_id = buckets
    spoke.put_object(Bucket="spoke-models", Key=KEY, Body=ARTIFACT)
    hub.delete_object(Bucket="hub-artifacts", Key=KEY)  # not needed: the replica is enough
    assert staging.stage_model(hub, spoke, _request(key_id))["Action"] == "copied-from-replica"
    assert _staged(spoke)[0] == ARTIFACT


def test_a_tampered_replica_is_skipped_for_the_verified_hub_copy(buckets: Any) -> None:
    hub, spoke, key_id = buckets
    spoke.put_object(Bucket="spoke-models", Key=KEY, Body=TAMPERED)
    assert staging.stage_model(hub, spoke, _request(key_id))["Action"] == "copied-from-hub"
    assert _staged(spoke)[0] == ARTIFACT


def test_metadata_is_not_trusted_a_staged_copy_is_hashed(buckets: Any) -> None:
    hub, spoke, key_id = buckets
    # Claims the pinned digest in its metadata, but the bytes are not the pinned ones.
    spoke.put_object(Bucket="spoke-models", Key=STAGED, Body=TAMPERED, Metadata={"sha256": SHA})
    assert staging.stage_model(hub, spoke, _request(key_id))["Action"] == "copied-from-hub"
    assert _staged(spoke)[0] == ARTIFACT


def test_an_artifact_that_is_not_the_pinned_one_is_refused(buckets: Any) -> None:
    hub, spoke, key_id = buckets
    spoke.put_object(Bucket="spoke-models", Key=KEY, Body=TAMPERED)
    with pytest.raises(staging.ArtifactMismatch, match="the release manifest pins") as raised:
        staging.stage_model(hub, spoke, _request(key_id, sha="0" * 64))
    message = str(raised.value)
    assert f"s3://spoke-models/{KEY}: {hashlib.sha256(TAMPERED).hexdigest()}" in message
    assert f"s3://hub-artifacts/{KEY}: {SHA}" in message
    assert [o["Key"] for o in spoke.list_objects_v2(Bucket="spoke-models")["Contents"]] == [KEY]


def test_a_staged_key_must_carry_the_pinned_digest() -> None:
    properties = {
        "SourceBucket": "hub-artifacts",
        "DestinationBucket": "spoke-models",
        "Key": KEY,
        "StagedKey": KEY,
        "Sha256": SHA,
        "DestinationKmsKey": "key",
    }
    with pytest.raises(ValueError, match="must contain the pinned sha256"):
        staging.StagingRequest.from_properties(properties)
    assert staging.StagingRequest.from_properties({**properties, "StagedKey": STAGED}).sha256 == SHA
    with pytest.raises(ValueError, match="needs StagedKey"):
        staging.StagingRequest.from_properties({**properties, "StagedKey": ""})


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
            "StagedKey": STAGED,
            "Sha256": SHA,
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
            {
                **event,
                "ResourceProperties": {
                    **event["ResourceProperties"],
                    "Sha256": "1" * 64,
                    "StagedKey": f"models/sha256/{'1' * 64}/model.tar.gz",
                },
            },
            None,
        )
    assert [s["Status"] for s in sent] == ["SUCCESS", "FAILED"]
    assert sent[0]["Data"]["Action"] == "copied-from-hub"
    assert sent[0]["Data"]["VersionId"] == _staged(buckets[1])[1]
    assert sent[0]["PhysicalResourceId"] == f"spoke-models/{STAGED}"
    assert "release manifest pins" in sent[1]["Reason"]
