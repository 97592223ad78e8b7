"""Stateful data layer of one (environment, region): key, buckets, feature groups."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.encryption_key import EncryptionKey
from mlops.constructs.feature_store import FeatureStore
from mlops.constructs.secure_bucket import AccessLogsBucket, SecureBucket
from mlops.nag import acknowledge
from mlops.naming import bucket_name


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
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retain = environment.retain_data
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
        self.feature_store = FeatureStore(
            self,
            "FeatureStore",
            name_prefix=f"{platform.project}-{environment.name}",
            offline_bucket=self.data_bucket,
            encryption_key=self.key,
            retain=retain,
        )
        self._acknowledge_bucket_notifications_handler()

    def _acknowledge_bucket_notifications_handler(self) -> None:
        """CDK's singleton custom resource that turns on EventBridge notifications."""
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's own bucket-notification custom resource; it only writes its logs "
                    "and runs once per deployment.",
                )
