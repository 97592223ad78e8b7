"""A bucket-policy judge for tests, independent of mlops: moto 5.2.5 cannot be one.

moto evaluates a bucket policy for object requests, but ignores its principals and every
condition it has no value for, which for S3 is all of them (tests/test_artifact_chain.py
shows it): it would apply an ArnNotEquals-conditioned Deny to the role it exempts, and CDK's
TLS-only Deny to every request. `bucket_policies_enforced` puts this evaluator in front of
every S3 call a test makes (moto still judges the caller's identity policy); the evaluator
models the conditions the platform's bucket policies use and fails a test on any other.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops.rehearsal.assembly import Stack

# bucket name -> (owning account, resolved policy statements)
Buckets = dict[str, tuple[str, list[dict[str, Any]]]]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def account_of(arn: str) -> str:
    return arn.split(":")[4]


# --- the test's own bucket-policy evaluator --------------------------------------------------


def _principal_matches(principal: Any, arn: str) -> bool:
    if principal == "*":
        return True
    for value in listed(principal.get("AWS", [])):
        root = value if re.fullmatch(r"\d{12}", value) else None
        root = root or (value.split(":")[4] if value.endswith(":root") else None)
        if value == "*" or value == arn or root == account_of(arn):
            return True
    return False


def _condition_holds(operator: str, key: str, expected: Any, principal_arn: str) -> bool:
    if (operator, key) == ("Bool", "aws:SecureTransport"):
        return str(expected).lower() == "true"  # every request here uses TLS
    if key != "aws:PrincipalArn":
        pytest.fail(f"condition {operator} {key} is not modelled by this test's evaluator")
    negated = "Not" in operator
    base = operator.replace("Not", "")
    if base in ("ArnEquals", "ArnLike", "StringLike"):  # Arn* operators take * and ? too
        hit = any(fnmatch.fnmatchcase(principal_arn, e) for e in listed(expected))
    elif base == "StringEquals":
        hit = principal_arn in listed(expected)
    else:
        pytest.fail(f"condition operator {operator} is not modelled by this test's evaluator")
    return not hit if negated else hit


def bucket_policy_effect(
    statements: list[dict[str, Any]], action: str, resource: str, principal_arn: str
) -> str:
    """'Deny', 'Allow' or 'Neutral': what a bucket policy says about one request (an explicit
    deny wins). Conditions it does not model fail the test instead of guessing."""
    effects = set()
    for statement in statements:
        if not any(fnmatch.fnmatchcase(action, a) for a in listed(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in listed(statement["Resource"])):
            continue
        if not _principal_matches(statement.get("Principal", {}), principal_arn):
            continue
        if all(
            _condition_holds(operator, key, expected, principal_arn)
            for operator, block in statement.get("Condition", {}).items()
            for key, expected in block.items()
        ):
            effects.add(statement["Effect"])
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else "Neutral"


def bucket_refuses(
    bucket: tuple[str, list[dict[str, Any]]], action: str, resource: str, principal_arn: str
) -> bool:
    """S3's resource side: an explicit Deny refuses; another account also needs an Allow."""
    account, statements = bucket
    effect = bucket_policy_effect(statements, action, resource, principal_arn)
    return effect == "Deny" or (account_of(principal_arn) != account and effect != "Allow")


def _s3_request(operation: str, params: dict[str, Any]) -> tuple[str, str]:
    bucket, key = params["Bucket"], params.get("Key")
    if operation in ("GetObject", "HeadObject"):
        action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    elif operation == "DeleteObject":
        action = "s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"
    elif operation == "PutObject":
        action = "s3:PutObject"
    elif operation in ("ListObjectVersions", "ListObjectsV2"):
        action = "s3:ListBucketVersions" if operation == "ListObjectVersions" else "s3:ListBucket"
    else:
        pytest.fail(f"S3 {operation} is not modelled by this test's bucket-policy hook")
    return action, f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"


@contextmanager
def bucket_policies_enforced(buckets: Buckets, principal_arn: str) -> Iterator[None]:
    """Every S3 client created in the block is refused (AccessDenied) what the buckets'
    policies refuse to principal_arn, before moto sees the request."""
    original_client = boto3.client

    def refuse(model: Any, params: dict[str, Any], **_: Any) -> None:
        action, resource = _s3_request(model.name, params)
        if bucket_refuses(buckets[params["Bucket"]], action, resource, principal_arn):
            error = {"Code": "AccessDenied", "Message": f"bucket policy refuses {action}"}
            raise ClientError({"Error": error}, model.name)

    def gated_client(*args: Any, **kwargs: Any) -> Any:
        client = original_client(*args, **kwargs)
        if client.meta.service_model.service_name == "s3":
            client.meta.events.register("before-parameter-build.s3", refuse)
        return client

    with mock.patch.object(boto3, "client", gated_client):
        yield


def bucket_policy(stack: Stack, bucket: str) -> list[dict[str, Any]]:
    (statements,) = [
        stack.resolve(p["Properties"]["PolicyDocument"])["Statement"]
        for _, p in stack.of_type("AWS::S3::BucketPolicy")
        if stack.resolve(p["Properties"]["Bucket"]) == bucket
    ]
    return list(statements)


def attempt(call: Callable[[], Any]) -> str:
    """'written', or who refused the S3 call: this evaluator, moto's IAM, or moto itself."""
    try:
        call()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if "bucket policy" in str(error):
            return "refused by bucket policy"  # this test's evaluator
        return (
            "refused by identity (moto)" if code == "AccessDenied" else f"refused by moto ({code})"
        )
    return "written"
