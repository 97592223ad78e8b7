"""S3 buckets the way every bucket of the platform must be."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.constructs import cdk_values
from mlops.nag import NIST, acknowledge


def acknowledge_stage_local(bucket: s3.IBucket) -> None:
    """NIST asks for replication of every bucket; ours are per (environment, region) on
    purpose, and model artifacts reach other regions through the hub's own rule."""
    acknowledge(
        bucket,
        f"{NIST}-S3BucketReplicationEnabled",
        "Stage-local by design: every (environment, region) keeps its own data; model artifacts replicate from the hub.",
    )


def _removal(retain: bool) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY


class AccessLogsBucket(Construct):
    """Target of S3 server access logs. S3 can only deliver them to an SSE-S3 bucket."""

    def __init__(
        self, scope: Construct, construct_id: str, *, retain: bool, expire_days: int = 365
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            versioned=True,
            enforce_ssl=True,
            block_public_access=cdk_values.block_all(),
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=_removal(retain),
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk_values.days(expire_days),
                    noncurrent_version_expiration=cdk_values.days(30),
                    abort_incomplete_multipart_upload_after=cdk_values.days(7),
                )
            ],
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "This is the server access log bucket itself; logging it into itself would loop.",
        )
        acknowledge(
            self.bucket,
            f"{NIST}-S3DefaultEncryptionKMS",
            "S3 delivers server access logs only to buckets encrypted with SSE-S3.",
        )
        acknowledge_stage_local(self.bucket)


class SecureBucket(Construct):
    """Versioned, SSE-KMS, TLS-only, private bucket with access logs and version lifecycle."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str,
        encryption_key: kms.IKey,
        access_logs: s3.IBucket,
        retain: bool,
        noncurrent_version_days: int = 90,
        event_bridge_enabled: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            block_public_access=cdk_values.block_all(),
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"{construct_id}/",
            removal_policy=_removal(retain),
            event_bridge_enabled=event_bridge_enabled,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=cdk_values.days(noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=cdk_values.days(7),
                )
            ],
        )
        acknowledge_stage_local(self.bucket)
