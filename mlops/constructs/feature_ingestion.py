"""Feature ingestion: new raw weather.csv / planes.csv under the raw prefix of the stage's
data bucket -> EventBridge -> a Lambda that PutRecords them into the weather and plane
feature groups (online and offline stores). The same S3 "Object Created" events that start
the training pipeline; a Lambda rather than a processing job because a year of both tables
is about 29,000 records (well inside one invocation at 16 PutRecords in flight) and it
starts in seconds. The role may only read the raw tables, keep its ledger, and PutRecord
into these two groups.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.constructs.python_function import PythonFunction
from mlops.nag import acknowledge_key_grant, acknowledge_wildcard_resource

LEDGER_PREFIX = "feature-store-ingested/"
# The raw tables that feed feature groups (pipeline_steps/feature_records.GROUP_OF_FILE).
FEATURE_FILES = ("weather.csv", "planes.csv")


class FeatureIngestion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        raw_prefix: str,
        weather_feature_group: str,
        plane_feature_group: str,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.handler = PythonFunction(
            self,
            "Handler",
            source="feature_ingestion",
            description="New raw weather/planes data -> weather and plane feature groups.",
            encryption_key=encryption_key,
            environment={
                "WEATHER_FEATURE_GROUP": weather_feature_group,
                "PLANE_FEATURE_GROUP": plane_feature_group,
                "LEDGER_PREFIX": LEDGER_PREFIX,
            },
            timeout_seconds=900,
            memory_mb=1024,
            step_modules=("feature_schema", "feature_records"),
        )
        role = self.handler.role
        raw_objects = data_bucket.arn_for_objects(f"{raw_prefix}*")
        ledger_objects = data_bucket.arn_for_objects(f"{LEDGER_PREFIX}*")
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[raw_objects]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"], resources=[ledger_objects]
            )
        )
        # HeadObject on a missing ledger key answers 404 only with ListBucket (else 403).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{LEDGER_PREFIX}*"]}},
            )
        )
        self.feature_group_arns = [
            stack.format_arn(service="sagemaker", resource="feature-group", resource_name=name)
            for name in (weather_feature_group, plane_feature_group)
        ]
        role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:PutRecord"], resources=self.feature_group_arns)
        )
        encryption_key.grant_encrypt_decrypt(role)
        acknowledge_key_grant(role)
        for objects, why in (
            (
                raw_objects,
                "Raw tables are uploaded under the raw prefix with names chosen by the uploader.",
            ),
            (
                ledger_objects,
                "One ledger object per ingested file digest; the names are the digests.",
            ),
        ):
            acknowledge_wildcard_resource(role, objects, why)

        self.rule = events.Rule(
            self,
            "NewRawFeatures",
            description="Ingest new raw weather/planes tables into the feature groups.",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data_bucket.bucket_name]},
                    "object": {
                        "key": [{"wildcard": f"{raw_prefix}*{name}"} for name in FEATURE_FILES]
                    },
                },
            ),
            targets=[targets.LambdaFunction(self.handler.function, retry_attempts=2)],
        )
