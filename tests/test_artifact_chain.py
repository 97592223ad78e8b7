"""The artifact chain against an attacker in the hub account.

After a model is promoted to staging, the dev training execution role (anyone who can write
`training-pipeline/models/` at the hub) overwrites the hub's model.tar.gz, and S3 replication
carries the new bytes to the serving region's replica. The served copy, its verification and
the endpoint's model data must not change. The roles, bucket policies, keys and custom
resource properties come from the synthesized default app; S3 is moto's.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Any

import boto3
import pytest
from conftest import of_type
from moto import mock_aws
from moto.iam.access_control import IAMPolicy, PermissionResult
from test_stage_model import staging

HUB, SERVING = "dev-us-east-1", "staging-eu-west-1"
REVIEWED = b"the reviewed model.tar.gz"
MALICIOUS = b"a model the reviewers never saw"
SHA = hashlib.sha256(REVIEWED).hexdigest()


def resolve(value: Any, resources: dict[str, Any]) -> Any:
    """The few intrinsics our policies use, resolved to literal strings."""
    if isinstance(value, list):
        return [resolve(v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, resources)) for p in parts)
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        resource = resources.get(logical_id, {})
        if resource.get("Type") == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{resource['Properties']['BucketName']}"
        return f"<{logical_id}.{attribute}>"
    if value.get("Ref") == "AWS::Partition":
        return "aws"
    if "Ref" in value or "Fn::GetStackOutput" in value:
        return f"<{json.dumps(value)}>"
    return {k: resolve(v, resources) for k, v in value.items()}


def role_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    return [
        statement
        for policy in of_type(resources, "AWS::IAM::Policy")
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in resolve(policy["Properties"]["PolicyDocument"], resources)["Statement"]
    ]


def identity_allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """moto's evaluation of an identity policy (explicit deny wins, else any allow)."""
    policy = IAMPolicy({"policy_document": json.dumps({"Statement": statements})})
    return policy.is_action_permitted(action, resource) == PermissionResult.PERMITTED


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def bucket_policy_effect(
    statements: list[dict[str, Any]], action: str, resource: str, principal_arn: str
) -> str:
    """'Deny', 'Allow' or 'Neutral' for a principal, as S3 reads a bucket policy: an explicit
    deny wins. Conditions: the ones our bucket policies use (Bool on aws:SecureTransport with
    TLS in use, ArnEquals / ArnNotEquals on aws:PrincipalArn); anything else fails the test."""
    effects = set()
    for statement in statements:
        if not any(fnmatch.fnmatchcase(action, a) for a in _as_list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _as_list(statement["Resource"])):
            continue
        principals = _as_list(statement["Principal"].get("AWS", []))
        account_root = f"arn:aws:iam::{principal_arn.split(':')[4]}:root"
        if not {"*", principal_arn, account_root} & set(principals):
            continue
        applies = True
        for operator, condition in statement.get("Condition", {}).items():
            for key, expected in condition.items():
                if (operator, key) == ("Bool", "aws:SecureTransport"):
                    applies &= expected == "true"
                elif key == "aws:PrincipalArn" and operator in ("ArnEquals", "ArnNotEquals"):
                    named = principal_arn in _as_list(expected)
                    applies &= named if operator == "ArnEquals" else not named
                else:
                    pytest.fail(f"condition {operator} {key} is not modelled by this test")
        if applies:
            effects.add(statement["Effect"])
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else "Neutral"


def test_the_hub_training_role_cannot_change_what_a_serving_region_serves(
    templates: dict[str, Any],
) -> None:
    training, data, serving = (
        templates[f"{HUB}/Training"],
        templates[f"{SERVING}/Data"],
        templates[f"{SERVING}/Serving"],
    )
    training_role = next(
        k for k in training["Resources"] if k.startswith("TrainingPipelineExecutionRole")
    )
    attacker = role_statements(training, training_role)
    (bucket_policy,) = [
        resolve(p["Properties"]["PolicyDocument"], data["Resources"])["Statement"]
        for k, p in data["Resources"].items()
        if k.startswith("ModelBucketPolicy")
    ]
    artifact = of_type(serving["Resources"], "Custom::ModelArtifact")[0]["Properties"]
    models = of_type(serving["Resources"], "AWS::SageMaker::Model")
    model_urls = {m["Properties"]["PrimaryContainer"]["ModelDataUrl"] for m in models}
    pinned_url = next(u for u in model_urls if artifact["Sha256"] in u)
    # The endpoint reads the content-addressed copy, named by the pinned digest.
    assert pinned_url == (
        f"s3://{artifact['DestinationBucket']}/models/sha256/{artifact['Sha256']}/model.tar.gz"
    )
    assert artifact["StagedKey"] == pinned_url.split("/", 3)[3]
    # The test's artifact stands in for the pinned one: same keys, its own digest.
    properties = {**artifact, "Sha256": SHA, "StagedKey": f"models/sha256/{SHA}/model.tar.gz"}
    properties["DestinationKmsKey"] = "alias/serving"
    request = staging.StagingRequest.from_properties(properties)
    hub_object = f"arn:aws:s3:::{request.source_bucket}/{request.key}"
    replica = f"arn:aws:s3:::{request.destination_bucket}/{request.key}"
    served = f"arn:aws:s3:::{request.destination_bucket}/{request.staged_key}"
    training_arn = "arn:aws:iam::222222222222:role/training-execution"
    replication_arn = next(
        s["Condition"]["ArnEquals"]["aws:PrincipalArn"]
        for s in bucket_policy
        if s.get("Sid") == "HubReplicatesModels"
    )
    stager_arn = f"arn:aws:iam::333333333333:role/flightdelay-{SERVING}-model-stager"

    # The attack's premise: the training role may overwrite the hub's model object...
    assert identity_allows(attacker, "s3:PutObject", hub_object)
    # ...and replication may carry it into the serving bucket, under the hub's key only.
    assert bucket_policy_effect(bucket_policy, "s3:ReplicateObject", replica, replication_arn) == (
        "Allow"
    )
    # What protects the served copy: nobody but the region's stager may write it.
    assert not identity_allows(attacker, "s3:PutObject", served)
    for principal in (training_arn, replication_arn):
        for action in ("s3:PutObject", "s3:ReplicateObject"):
            assert bucket_policy_effect(bucket_policy, action, served, principal) == "Deny"
    assert bucket_policy_effect(bucket_policy, "s3:PutObject", served, stager_arn) == "Neutral"

    with mock_aws():
        hub = boto3.client("s3", region_name="us-east-1")
        hub.create_bucket(Bucket=request.source_bucket)
        region = boto3.client("s3", region_name="eu-west-1")
        for bucket in (request.destination_bucket, "a-region-added-later"):
            region.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
            )
            region.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        hub.put_object(Bucket=request.source_bucket, Key=request.key, Body=REVIEWED)
        first = staging.stage_model(hub, region, request)
        assert first["Action"] == "copied-from-hub"

        # The attack: overwrite at the hub, replicated into the serving region.
        hub.put_object(Bucket=request.source_bucket, Key=request.key, Body=MALICIOUS)
        region.put_object(Bucket=request.destination_bucket, Key=request.key, Body=MALICIOUS)

        copy = region.get_object(Bucket=request.destination_bucket, Key=request.staged_key)
        assert hashlib.sha256(copy["Body"].read()).hexdigest() == SHA
        assert copy["VersionId"] == first["VersionId"]
        # The next deployment verifies the served copy by its bytes and leaves it alone.
        assert staging.stage_model(hub, region, request) == {
            "Action": "present",
            "Sha256": SHA,
            "VersionId": first["VersionId"],
        }
        # A region staging for the first time refuses the tampered bytes rather than serve them.
        fresh = staging.StagingRequest.from_properties(
            {**properties, "DestinationBucket": "a-region-added-later"}
        )
        with pytest.raises(staging.ArtifactMismatch, match="refusing to serve it"):
            staging.stage_model(hub, region, fresh)
        assert region.list_objects_v2(Bucket="a-region-added-later")["KeyCount"] == 0
