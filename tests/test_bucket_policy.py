"""The tests' bucket-policy evaluator (tests/bucket_policy.py) against S3's documented rules,
and against moto where moto can judge (no conditions)."""

from __future__ import annotations

import json

import boto3
import pytest
from bucket_policy import attempt, bucket_policy_effect, bucket_refuses
from moto import mock_aws

BUCKET = "arn:aws:s3:::serving"
STAGER = "arn:aws:iam::333333333333:role/stager"
ONLY_THE_STAGER = {
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": ["s3:PutObject", "s3:DeleteObject*"],
    "Resource": f"{BUCKET}/models/sha256/*",
    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": STAGER}},
}
HUB_MAY_REPLICATE = {
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
    "Action": "s3:ReplicateObject",
    "Resource": f"{BUCKET}/training-pipeline/models/*",
    "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::222222222222:role/rep*"}},
}


@pytest.mark.parametrize(
    ("action", "key", "principal", "refused"),
    [
        ("s3:PutObject", "models/sha256/d/m", STAGER, False),  # the exempted role
        ("s3:PutObject", "models/sha256/d/m", "arn:aws:iam::333333333333:role/other", True),
        ("s3:DeleteObjectVersion", "models/sha256/d/m", "arn:aws:iam::333333333333:root", True),
        (
            "s3:PutObject",
            "elsewhere",
            "arn:aws:iam::333333333333:role/other",
            False,
        ),  # same account
        ("s3:PutObject", "elsewhere", "arn:aws:iam::222222222222:role/other", True),  # no Allow
        (
            "s3:ReplicateObject",
            "training-pipeline/models/m",
            "arn:aws:iam::222222222222:role/rep1",
            False,
        ),
        (
            "s3:ReplicateObject",
            "training-pipeline/models/m",
            "arn:aws:iam::222222222222:role/x",
            True,
        ),
        ("s3:ReplicateObject", "models/sha256/d/m", "arn:aws:iam::222222222222:role/rep1", True),
    ],
)
def test_the_evaluator_reads_bucket_policies_as_s3_does(
    action: str, key: str, principal: str, refused: bool
) -> None:
    bucket = ("333333333333", [ONLY_THE_STAGER, HUB_MAY_REPLICATE])
    assert bucket_refuses(bucket, action, f"{BUCKET}/{key}", principal) is refused


def test_the_evaluator_refuses_to_guess_a_condition() -> None:
    unknown = {**ONLY_THE_STAGER, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    with pytest.raises(pytest.fail.Exception, match="not modelled"):
        bucket_policy_effect([unknown], "s3:PutObject", f"{BUCKET}/models/sha256/d/m", STAGER)


@pytest.mark.parametrize("effect", ["Deny", "Allow"])
@pytest.mark.parametrize("resource", ["arn:aws:s3:::serving/models/*", "arn:aws:s3:::serving/x/*"])
@pytest.mark.parametrize("action", ["s3:PutObject", "s3:Get*", "s3:*"])
def test_the_evaluator_agrees_with_moto_where_moto_can_judge(
    effect: str, resource: str, action: str
) -> None:
    """moto judges a bucket policy without conditions (principal '*'): a second opinion."""
    statement = {
        "Effect": effect,
        "Principal": {"AWS": "*"},
        "Action": action,
        "Resource": resource,
    }
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="serving")
        s3.put_bucket_policy(Bucket="serving", Policy=json.dumps({"Statement": [statement]}))
        for call, iam_action in (
            (lambda: s3.put_object(Bucket="serving", Key="models/m", Body=b"x"), "s3:PutObject"),
            (lambda: s3.get_object(Bucket="serving", Key="models/m"), "s3:GetObject"),
        ):
            ours = bucket_policy_effect(
                [statement], iam_action, "arn:aws:s3:::serving/models/m", STAGER
            )
            assert (attempt(call) == "refused by moto (403)") is (ours == "Deny")
