"""Serving in one (environment, region): the pinned model behind a blue/green endpoint, with
autoscaling, alarms, a dashboard and the rollback Lambda. No pinned model: no endpoint."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.endpoint_alarms import EndpointAlarms
from mlops.constructs.endpoint_autoscaling import EndpointAutoscaling
from mlops.constructs.endpoint_dashboard import EndpointDashboard
from mlops.constructs.endpoint_rollback import EndpointRollback
from mlops.constructs.failure_alerts import FailureAlerts
from mlops.constructs.global_routing import GlobalRouting
from mlops.constructs.inference_api import InferenceApi
from mlops.constructs.model_staging import HubArtifacts, ModelStaging
from mlops.constructs.realtime_endpoint import VARIANT_NAME, RealtimeEndpoint
from mlops.constructs.sagemaker_log_groups import SageMakerLogGroup, endpoint_log_group_name
from mlops.constructs.smoke_test_access import SmokeTestAccess
from mlops.naming import (
    bucket_name,
    endpoint_name,
    model_key_alias,
    model_stager_role_name,
    post_deploy_check_role_name,
    rollback_role_name,
    smoke_test_role_name,
)
from mlops.pipeline_definition import images
from mlops.release_manifest import EnvironmentRelease
from mlops.stacks.data_stack import DataStack


class ServingStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        environment: EnvironmentConfig,
        release: EnvironmentRelease,
        data: DataStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        current = release.current
        if current is None:
            raise ValueError("ServingStack needs a pinned model; the stage skips it otherwise")
        name = endpoint_name(platform, environment)
        buckets = data.buckets_for(self)
        serving = environment.serving
        instance_type = None if serving.serverless else serving.instance_type
        self.alarms = EndpointAlarms(
            self,
            "Alarms",
            endpoint_name=name,
            variant_name=VARIANT_NAME,
            thresholds=environment.alarms,
            instance_type=instance_type,
            encryption_key=data.key,
        )
        hub = platform.registry_of(environment)
        staging = ModelStaging(
            self,
            "ModelStaging",
            releases=[r for r in (current, release.previous) if r is not None],
            hub=HubArtifacts(
                account=hub.account,
                region=hub.home_region,
                bucket_name=bucket_name(platform, hub, hub.home_region, "artifacts"),
                key_alias=model_key_alias(platform, hub),
            ),
            model_bucket=buckets.models,
            encryption_key=data.key,
            role_name=model_stager_role_name(platform, environment, self.region),
        )
        self.endpoint = RealtimeEndpoint(
            self,
            "Endpoint",
            endpoint_name=name,
            current=current,
            previous=release.previous,
            image_registry=images.registry_host(self.region),
            serving=serving,
            deployment=environment.deployment,
            model_bucket=buckets.models,
            capture_bucket=buckets.data,
            encryption_key=data.key,
            rollback_alarm_names=[alarm.alarm_name for alarm in self.alarms.rollback_alarms],
            metric_publish_seconds=environment.alarms.rollback_metric_seconds,
            artifact_versions={
                r.version: staging.staged_version(r) for r in (current, release.previous) if r
            },
        )
        # Ours before SageMaker's: created first, so it has the stage key and a retention.
        endpoint_logs = SageMakerLogGroup(
            self,
            "EndpointLogs",
            log_group_name=endpoint_log_group_name(name),
            encryption_key=data.key,
            retain=environment.retain_data,
        )
        self.endpoint.node.add_dependency(endpoint_logs)
        # The models need their artifacts in this region's bucket before they are created.
        for artifact in staging.artifacts:
            self.endpoint.node.add_dependency(artifact)
        # SageMaker refuses an instance-type change while a scalable target is registered:
        # `autoscaling: false` deregisters it for that deploy (README: instance type change).
        if not serving.serverless and serving.autoscaling:
            EndpointAutoscaling(
                self,
                "Autoscaling",
                endpoint_name=name,
                variant_name=VARIANT_NAME,
                serving=serving,
            ).node.add_dependency(self.endpoint.endpoint)
        EndpointDashboard(self, "Dashboard", endpoint_name=name, alarms=self.alarms)
        rollback = EndpointRollback(
            self,
            "Rollback",
            endpoint_name=name,
            current_config_name=self.endpoint.current_config.attr_endpoint_config_name,
            previous_config_name=(
                self.endpoint.previous_config.attr_endpoint_config_name
                if self.endpoint.previous_config is not None
                else None
            ),
            current=current,
            alarms=self.alarms.rollback_alarms,
            topic=self.alarms.topic,
            encryption_key=data.key,
            manifest_hint=f"config/releases.yaml: {environment.name}",
            role_name=rollback_role_name(platform, environment, self.region),
        )
        self.failure_alerts = FailureAlerts(
            self, "FailureAlerts", topic=self.alarms.topic, encryption_key=data.key
        )
        self.failure_alerts.watch_function(rollback.function, invoked_async=True)
        self.failure_alerts.watch_rule(rollback.rule)
        # CloudFormation invokes custom resource providers asynchronously.
        self.failure_alerts.watch_function(staging.function, invoked_async=True)
        self.smoke_test = SmokeTestAccess(
            self,
            "SmokeTest",
            role_name=smoke_test_role_name(platform, environment, self.region),
            endpoint_name=name,
            tooling_account=platform.tooling.account,
            checker_role_name=post_deploy_check_role_name(platform, environment, self.region),
        )
        groups = data.feature_store.feature_groups
        self.inference_api = InferenceApi(
            self,
            "InferenceApi",
            api_name=f"{name}-inference",
            endpoint_name=name,
            manage_logging_role=environment.serving.api_gateway_logging_role == "managed",
            weather_feature_group=str(groups["weather"].feature_group_name),
            plane_feature_group=str(groups["plane"].feature_group_name),
            encryption_key=data.key,
        )
        # API Gateway invokes it synchronously: the caller sees the error, the alarm counts it.
        self.failure_alerts.watch_function(self.inference_api.handler, invoked_async=False)
        if environment.routing is not None:
            GlobalRouting(
                self, "GlobalRouting", routing=environment.routing, api=self.inference_api
            )
        self.endpoint_name = name
        self.endpoint_config_output = cdk.CfnOutput(
            self,
            "EndpointConfigName",
            value=self.endpoint.current_config.attr_endpoint_config_name,
            description="What the post-deploy check expects DescribeEndpoint to report.",
        )
