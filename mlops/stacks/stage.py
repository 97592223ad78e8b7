"""One deployable unit per (environment, region): composes the stacks of that place."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.model_replication import ReplicaDestination
from mlops.constructs.sagemaker_log_groups import (
    PROCESSING_JOBS,
    TRAINING_JOBS,
    retain_log_groups,
)
from mlops.nag import acknowledge_role_scoped_policies
from mlops.naming import (
    bucket_name,
    model_key_alias,
    model_stager_role_name,
    retrain_gate_role_name,
    rollback_role_name,
)
from mlops.release_manifest import EnvironmentRelease
from mlops.stacks.data_stack import DataStack
from mlops.stacks.monitoring_stack import MonitoringStack
from mlops.stacks.serving_stack import ServingStack
from mlops.stacks.training_stack import TrainingStack


def served_by(
    platform: PlatformConfig, hub: EnvironmentConfig
) -> list[tuple[EnvironmentConfig, str]]:
    """Every serving (environment, region) whose models come from this hub's registry."""
    return [
        (env, region)
        for env in platform.environments.values()
        if platform.registry_of(env).name == hub.name
        for region in env.regions
    ]


def replica_destinations(
    platform: PlatformConfig, hub: EnvironmentConfig
) -> list[ReplicaDestination]:
    return [
        ReplicaDestination(
            account=env.account,
            region=region,
            bucket_name=bucket_name(platform, env, region, "models"),
            key_alias=model_key_alias(platform, env),
        )
        for env, region in served_by(platform, hub)
    ]


def retrain_gate_roles(platform: PlatformConfig, hub: EnvironmentConfig) -> list[tuple[str, str]]:
    """(account, role name) of the retrain gate of every monitored stage
    (serverless endpoints capture no data, so they have no drift job and no gate)."""
    return [
        (env.account, retrain_gate_role_name(platform, env, region))
        for env, region in served_by(platform, hub)
        if not env.serving.serverless
    ]


def rollback_roles(platform: PlatformConfig, hub: EnvironmentConfig) -> list[tuple[str, str]]:
    """(account, role name) of the rollback Lambda of every serving stage."""
    return [
        (env.account, rollback_role_name(platform, env, region))
        for env, region in served_by(platform, hub)
    ]


def model_stager_roles(platform: PlatformConfig, hub: EnvironmentConfig) -> list[tuple[str, str]]:
    """(account, role name) of the model stager of every serving stage."""
    return [
        (env.account, model_stager_role_name(platform, env, region))
        for env, region in served_by(platform, hub)
    ]


def is_training_hub(environment: EnvironmentConfig, region: str) -> bool:
    """The stage that holds the environment's training pipeline and model registry."""
    return environment.training is not None and region == environment.home_region


def stage_id(environment: EnvironmentConfig, region: str) -> str:
    return f"{environment.name}-{region}"


class PlatformStage(cdk.Stage):
    """Self-contained: nothing here references another region or account."""

    def __init__(
        self,
        scope: Construct,
        *,
        platform: PlatformConfig,
        environment: EnvironmentConfig,
        region: str,
        release: EnvironmentRelease,
        training_only: bool = False,
        **kwargs: Any,
    ) -> None:
        """training_only: data and training stacks only (serving and monitoring left out)."""
        super().__init__(
            scope,
            stage_id(environment, region),
            env=cdk.Environment(account=environment.account, region=region),
            **kwargs,
        )
        is_hub = is_training_hub(environment, region)
        monitored = release.current is not None and not environment.serving.serverless
        self.environment_name = environment.name
        self.data = DataStack(
            self,
            "Data",
            platform=platform,
            environment=environment,
            region=region,
            replica_destinations=replica_destinations(platform, environment) if is_hub else None,
            model_stager_roles=model_stager_roles(platform, environment) if is_hub else None,
            job_log_groups=((TRAINING_JOBS,) if is_hub else ())
            + ((PROCESSING_JOBS,) if is_hub or monitored else ()),
        )
        self.training: TrainingStack | None = None
        if is_hub:
            self.training = TrainingStack(
                self,
                "Training",
                platform=platform,
                environment=environment,
                data=self.data,
                retrain_gate_roles=retrain_gate_roles(platform, environment),
                rollback_roles=rollback_roles(platform, environment),
            )
        self.serving: ServingStack | None = None
        if release.current is not None and not training_only:
            self.serving = ServingStack(
                self,
                "Serving",
                platform=platform,
                environment=environment,
                release=release,
                data=self.data,
            )
            if environment.serving.serverless:
                # Serverless endpoints cannot capture data: there is nothing to monitor.
                cdk.Annotations.of(self.serving).add_info(
                    f"{environment.name}: serverless endpoint, no data capture, no drift monitoring"
                )
            else:
                self.monitoring = MonitoringStack(
                    self,
                    "Monitoring",
                    platform=platform,
                    environment=environment,
                    release=release.current,
                    data=self.data,
                    serving=self.serving,
                )
        elif not training_only:
            cdk.Annotations.of(self.data).add_info(
                f"{environment.name}: no model pinned in config/releases.yaml; "
                "no endpoint is deployed in this stage"
            )
        if environment.retain_data:
            # Lambda, endpoint and job logs outlive a stack deletion where data does.
            retain_log_groups(self)
        # One walk of the finished stage (CDK Pipelines synthesizes it when the delivery
        # pipeline adds it); the delivery stack puts the same acknowledgement on its roles.
        acknowledge_role_scoped_policies(self)
        for key, value in (
            ("project", platform.project),
            ("environment", environment.name),
            ("cost-centre", platform.cost_centre),
        ):
            cdk.Tags.of(self).add(key, value)
