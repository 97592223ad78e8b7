"""Stateful data layer of one (environment, region): key, buckets, feature groups."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.encryption_key import EncryptionKey
from mlops.constructs.feature_store import FeatureStore
from mlops.constructs.secure_bucket import AccessLogsBucket, SecureBucket


class DataStack(cdk.Stack):
    """Everything here is stateful: RETAINed outside dev; tests pin the logical ids."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        environment: EnvironmentConfig,
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
            self, "DataBucket", encryption_key=self.key, access_logs=self.access_logs, retain=retain
        ).bucket
        self.artifact_bucket = SecureBucket(
            self,
            "ArtifactBucket",
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
