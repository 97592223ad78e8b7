"""Training in an environment's home region: registry, pipeline, triggers."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.failure_alerts import failure_alerts_with_own_topic
from mlops.constructs.model_registry import ModelRegistry
from mlops.constructs.pipeline_triggers import PipelineTriggers
from mlops.constructs.retrain_trigger import RetrainStarterRole
from mlops.constructs.training_pipeline import RAW_PREFIX, TrainingPipeline
from mlops.naming import (
    athena_workgroup_name,
    model_package_group_name,
    retrain_starter_role_name,
    training_pipeline_name,
)
from mlops.stacks.data_stack import DataStack


class TrainingStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        environment: EnvironmentConfig,
        data: DataStack,
        retrain_gate_roles: list[tuple[str, str]],
        rollback_roles: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        """retrain_gate_roles, rollback_roles: (account, role name) of every serving stage's
        drift gate and rollback Lambda."""
        super().__init__(scope, construct_id, **kwargs)
        if environment.training is None:
            raise ValueError(f"environment {environment.name} has no training section")
        self.registry = ModelRegistry(
            self,
            "Registry",
            group_name=model_package_group_name(platform, environment),
            description=f"{platform.project} models trained in {environment.name}",
            # Same-account rollback roles need no resource policy: their own policy grants it.
            rollback_roles=[(a, n) for a, n in rollback_roles if a != environment.account],
            retain=True,  # the hub registry serves every environment: never deleted with dev
        )
        buckets = data.buckets_for(self)
        self.training = TrainingPipeline(
            self,
            "TrainingPipeline",
            pipeline_name=training_pipeline_name(platform, environment),
            training=environment.training,
            environment=environment,
            registry=self.registry,
            data_bucket=buckets.data,
            artifact_bucket=buckets.artifacts,
            encryption_key=data.key,
            offline_tables=data.offline_catalog.tables,
            workgroup_name=athena_workgroup_name(platform, environment),
        )
        triggers = PipelineTriggers(
            self,
            "Triggers",
            pipeline_arn=self.training.pipeline_arn,
            schedule=environment.training.schedule,
            data_bucket=buckets.data,
            raw_prefix=RAW_PREFIX,
        )
        # Hub side of the drift retrain loop: the serving stages' gates assume this role.
        RetrainStarterRole(
            self,
            "RetrainStarter",
            role_name=retrain_starter_role_name(platform, environment),
            pipeline_arn=self.training.pipeline_arn,
            model_package_group_arn=self.registry.group_arn,
            gate_roles=retrain_gate_roles,
        )
        # Training has no endpoint topic: its failures go to a topic of its own.
        self.failure_alerts = failure_alerts_with_own_topic(
            self,
            display_name=f"{training_pipeline_name(platform, environment)} failures",
            encryption_key=data.key,
        )
        # A pipeline Lambda step invokes it synchronously: the step (and the pipeline) fail.
        self.failure_alerts.watch_function(self.training.find_incumbent, invoked_async=False)
        for rule in (triggers.schedule_rule, triggers.new_data_rule):
            self.failure_alerts.watch_rule(rule)
        self.failure_alerts.watch_pipeline(
            training_pipeline_name(platform, environment), self.training.pipeline_arn
        )
