"""Stateful data layer of one (environment, region): key, buckets, feature groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.encryption_key import EncryptionKey
from mlops.constructs.failure_alerts import failure_alerts_with_own_topic
from mlops.constructs.feature_ingestion import FeatureIngestion
from mlops.constructs.feature_store import FeatureStore
from mlops.constructs.model_replication import (
    ModelReplication,
    ReplicaDestination,
    allow_hub_replication,
)
from mlops.constructs.model_staging import allow_model_stagers, protect_staged_models
from mlops.constructs.offline_catalog import OfflineCatalog
from mlops.constructs.sagemaker_log_groups import SageMakerLogGroup
from mlops.constructs.secure_bucket import AccessLogsBucket, SecureBucket
from mlops.constructs.training_pipeline import RAW_PREFIX
from mlops.nag import LAMBDA_WITHOUT_VPC, acknowledge_each
from mlops.naming import (
    bucket_name,
    feature_database_name,
    model_key_alias,
    model_stager_role_name,
    replication_role_name,
)


@dataclass(frozen=True)
class StageBuckets:
    """The stage's buckets as seen from a sibling stack: imported by their config-derived
    names, so IAM statements there name them literally (cross-stack tokens would make
    cdk-nag findings impossible to acknowledge precisely)."""

    data: s3.IBucket
    artifacts: s3.IBucket
    models: s3.IBucket


class DataStack(cdk.Stack):
    """Everything here is stateful: RETAINed outside dev; tests pin the logical ids."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        environment: EnvironmentConfig,
        region: str,
        replica_destinations: list[ReplicaDestination] | None = None,
        model_stager_roles: list[tuple[str, str]] | None = None,
        job_log_groups: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        """replica_destinations: set on the hub (training home) stage only. job_log_groups:
        the account-and-region-wide SageMaker job log groups this stage's jobs write to."""
        super().__init__(scope, construct_id, **kwargs)
        self._names = {
            purpose: bucket_name(platform, environment, region, purpose)
            for purpose in ("data", "artifacts", "models")
        }
        # The hub's registry, artifacts and key serve every environment: never delete them.
        retain = environment.retain_data or bool(replica_destinations)
        self.key = EncryptionKey(
            self,
            "DataKey",
            description=f"{platform.project} {environment.name}: data, artifacts, features",
            retain=retain,
        ).key
        self.access_logs = AccessLogsBucket(self, "AccessLogs", retain=retain).bucket
        self.data_bucket = SecureBucket(
            self,
            "DataBucket",
            bucket_name=bucket_name(platform, environment, region, "data"),
            encryption_key=self.key,
            access_logs=self.access_logs,
            retain=retain,
            event_bridge_enabled=True,  # new raw data starts the training pipeline
        ).bucket
        self.artifact_bucket = SecureBucket(
            self,
            "ArtifactBucket",
            bucket_name=bucket_name(platform, environment, region, "artifacts"),
            encryption_key=self.key,
            access_logs=self.access_logs,
            retain=retain,
        ).bucket
        # Hub and spoke: the hub replicates approved model artifacts into this bucket.
        hub = platform.registry_of(environment)
        hub_role_arn = (
            f"arn:{self.partition}:iam::{hub.account}:role/{replication_role_name(platform, hub)}"
        )
        self.model_bucket = SecureBucket(
            self,
            "ModelBucket",
            bucket_name=bucket_name(platform, environment, region, "models"),
            encryption_key=self.key,
            access_logs=self.access_logs,
            retain=retain,
        ).bucket
        kms.Alias(
            self,
            "ModelKeyAlias",
            alias_name=model_key_alias(platform, environment),
            target_key=self.key,
        )
        self.replication: ModelReplication | None = None
        if replica_destinations:
            self.replication = ModelReplication(
                self,
                "ModelReplication",
                source_bucket=self.artifact_bucket,
                source_key=self.key,
                role_name=replication_role_name(platform, hub),
                destinations=replica_destinations,
            )
        allow_hub_replication(
            bucket=self.model_bucket, key=self.key, hub_role_arn=hub_role_arn, region=region
        )
        protect_staged_models(
            bucket=self.model_bucket,
            stager_role_arn=f"arn:{self.partition}:iam::{environment.account}:role/"
            f"{model_stager_role_name(platform, environment, region)}",
        )
        allow_model_stagers(
            bucket=self.artifact_bucket,
            key=self.key,
            stager_roles=model_stager_roles or [],
            region=region,
        )
        if self.replication is not None:
            # Same stack: the bucket policy may only name the role once it exists, and S3
            # checks a same-account destination (versioned) when replication is configured.
            policy = self.model_bucket.policy
            assert policy is not None
            # Resource to resource: the role's policy names the artifact bucket, so depending on
            # whole constructs would be a cycle.
            role = self.replication.role.node.default_child
            policy.node.add_dependency(role)
            # KMS refuses a key policy whose principal does not exist yet (and a rollback
            # deletes the role again, so every retry would fail the same way).
            self.key.node.default_child.node.add_dependency(role)  # type: ignore[union-attr]
            self.artifact_bucket.node.default_child.node.add_dependency(  # type: ignore[union-attr]
                self.model_bucket.node.default_child
            )
        # The Glue database the training join queries (Athena): raw flights + offline stores.
        self.offline_catalog = OfflineCatalog(
            self,
            "OfflineCatalog",
            database_name=feature_database_name(platform, environment),
            data_bucket=self.data_bucket,
            raw_prefix=RAW_PREFIX,
            retain=retain,
        )
        self.feature_store = FeatureStore(
            self,
            "FeatureStore",
            name_prefix=f"{platform.project}-{environment.name}",
            offline_bucket=self.data_bucket,
            encryption_key=self.key,
            catalog_database=self.offline_catalog.tables.database,
            retain=retain,
        )
        for group in self.feature_store.feature_groups.values():
            group.add_resource_dependency(self.offline_catalog.database)
        for name in job_log_groups:
            SageMakerLogGroup(
                self,
                name.rsplit("/", 1)[-1] + "Logs",
                log_group_name=name,
                encryption_key=self.key,
                retain=retain,
            )
        # Stateless, but it belongs to the groups: new raw data -> feature records.
        groups = self.feature_store.feature_groups
        self.feature_ingestion = FeatureIngestion(
            self,
            "FeatureIngestion",
            data_bucket=self.data_bucket,
            raw_prefix=RAW_PREFIX,
            weather_feature_group=str(groups["weather"].feature_group_name),
            plane_feature_group=str(groups["plane"].feature_group_name),
            encryption_key=self.key,
        )
        # EventBridge invokes ingestion asynchronously: its errors and undeliverable events
        # alarm to a topic of this stack (the serving topic may not exist in this stage).
        self.failure_alerts = failure_alerts_with_own_topic(
            self,
            display_name=f"{platform.project}-{environment.name} {region} feature ingestion",
            encryption_key=self.key,
        )
        self.failure_alerts.watch_function(self.feature_ingestion.handler, invoked_async=True)
        self.failure_alerts.watch_rule(self.feature_ingestion.rule)
        self._acknowledge_bucket_notifications_handler()
        self._time_out_bucket_notifications()

    def buckets_for(self, consumer: cdk.Stack) -> StageBuckets:
        consumer.add_stack_dependency(self)

        def named(purpose: str) -> s3.IBucket:
            return s3.Bucket.from_bucket_attributes(
                consumer,
                f"{purpose.capitalize()}Bucket",
                bucket_name=self._names[purpose],
                encryption_key=self.key,
            )

        return StageBuckets(
            data=named("data"), artifacts=named("artifacts"), models=named("models")
        )

    def _time_out_bucket_notifications(self) -> None:
        """CDK's notifications custom resource has no ServiceTimeout: a hung handler would
        hold the stack for CloudFormation's default hour (its Lambda times out at 300 s)."""
        for child in self.node.find_all():
            # An L1 class (CfnBucket...) has its own fixed type: only a plain CfnResource is
            # asked for its type, one jsii call each.
            if (
                type(child) is cdk.CfnResource
                and child.cfn_resource_type == "Custom::S3BucketNotifications"
            ):
                child.add_property_override("ServiceTimeout", 360)

    def _acknowledge_bucket_notifications_handler(self) -> None:
        """CDK's singleton custom resource that turns on EventBridge notifications."""
        for child in self.node.children:
            # Ours come back as our own or L2 classes, CDK's handler as a plain Construct:
            # only those are asked for their id (two jsii requests each).
            if type(child) is Construct and child.node.id.startswith("BucketNotificationsHandler"):
                basic_execution_role = (
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]"
                )
                reason = (
                    "CDK's own bucket-notification custom resource; it only writes its logs "
                    "and runs once per deployment."
                )
                acknowledge_each(child, {basic_execution_role: reason, **LAMBDA_WITHOUT_VPC})
