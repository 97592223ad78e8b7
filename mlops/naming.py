"""The few physical names the platform needs, derived from config in one place.

Only names that another account, region or script must address are physical: the model
package group (serving accounts read it), the training pipeline (drift in other regions
starts it), endpoints (alarms and rollback reference them before they exist), and buckets
(replication destinations in other accounts; IAM policies in sibling stacks name them
literally instead of through cross-stack tokens). Changing any of these replaces the
resource: they depend only on project, environment, purpose, account and region.
"""

from __future__ import annotations

from typing import Literal

from mlops.config import ConfigError, EnvironmentConfig, PlatformConfig

BucketPurpose = Literal["data", "artifacts", "models"]


def model_package_group_name(platform: PlatformConfig, environment: EnvironmentConfig) -> str:
    return f"{platform.project}-{environment.name}"


def training_pipeline_name(platform: PlatformConfig, environment: EnvironmentConfig) -> str:
    return f"{platform.project}-{environment.name}-training"


def endpoint_name(platform: PlatformConfig, environment: EnvironmentConfig) -> str:
    """The same in every region of an environment: region is implied by where it lives."""
    return f"{platform.project}-{environment.name}"


def bucket_name(
    platform: PlatformConfig, environment: EnvironmentConfig, region: str, purpose: BucketPurpose
) -> str:
    """Globally unique by construction: the account and region are part of the name."""
    name = f"{platform.project}-{environment.name}-{purpose}-{environment.account}-{region}"
    if len(name) > 63:
        raise ConfigError(
            f"{platform.source}: project and environment names make the bucket name {name!r} "
            f"longer than S3's 63 characters; shorten them"
        )
    return name


def feature_database_name(platform: PlatformConfig, environment: EnvironmentConfig) -> str:
    """The Glue database of a stage's offline-store tables and raw flights table: the
    training pipeline's Athena query names it (Glue names: lowercase, digits and _)."""
    return f"{platform.project}_{environment.name}_features".replace("-", "_")


def athena_workgroup_name(platform: PlatformConfig, environment: EnvironmentConfig) -> str:
    """The workgroup the training pipeline's offline-store join runs in."""
    return f"{platform.project}-{environment.name}-training"


def replication_role_name(platform: PlatformConfig, hub: EnvironmentConfig) -> str:
    """The hub's S3 replication role: serving accounts trust it by name in bucket/key policies."""
    return f"{platform.project}-{hub.name}-model-replication"


def model_key_alias(platform: PlatformConfig, environment: EnvironmentConfig) -> str:
    """Alias of a serving stage's key: the hub encrypts replicas with it (a cross-account key
    ARN is unknowable at synth; the alias is)."""
    return f"alias/{platform.project}-{environment.name}-models"


def smoke_test_role_name(
    platform: PlatformConfig, environment: EnvironmentConfig, region: str
) -> str:
    """Assumed by the delivery pipeline from the tooling account (IAM names are per account,
    so the region is part of it)."""
    return f"{platform.project}-{environment.name}-{region}-smoke-test"[:64]


def post_deploy_check_role_name(
    platform: PlatformConfig, environment: EnvironmentConfig, region: str
) -> str:
    """The delivery pipeline's CodeBuild role that checks one serving stage (tooling account):
    that stage's smoke-test role trusts exactly this role."""
    return _role_name(platform, f"{platform.project}-{environment.name}-{region}-deploy-check")


def rollback_role_name(
    platform: PlatformConfig, environment: EnvironmentConfig, region: str
) -> str:
    """A serving stage's rollback Lambda role: the hub's model package group lets exactly these
    roles reject a package."""
    return _role_name(platform, f"{platform.project}-{environment.name}-rollback-{region}")


def retrain_starter_role_name(platform: PlatformConfig, hub: EnvironmentConfig) -> str:
    """The hub role that may start the training pipeline; serving stages' gates assume it."""
    return _role_name(platform, f"{platform.project}-{hub.name}-retrain-starter")


def retrain_gate_role_name(
    platform: PlatformConfig, environment: EnvironmentConfig, region: str
) -> str:
    """A serving stage's retrain-gate Lambda role: the hub role trusts it by name."""
    return _role_name(platform, f"{platform.project}-{environment.name}-retrain-gate-{region}")


def _role_name(platform: PlatformConfig, name: str) -> str:
    if len(name) > 64:
        raise ConfigError(
            f"{platform.source}: project and environment names make the IAM role name "
            f"{name!r} longer than IAM's 64 characters; shorten them"
        )
    return name


def model_stager_role_name(
    platform: PlatformConfig, environment: EnvironmentConfig, region: str
) -> str:
    """The serving stage's model-staging Lambda role: the hub's artifact bucket and key
    policies let exactly these roles read pinned artifacts."""
    return f"{platform.project}-{environment.name}-{region}-model-stager"[:64]
