"""A SageMaker real-time endpoint serving one pinned model release, blue/green.

Model (network isolation) + endpoint config (data capture under KMS, KMS volume key where the
instance type allows) for the current release, the same for the previous release (kept so
the rollback Lambda has something to return to), and the endpoint with a CANARY or LINEAR
blue/green deployment, auto-rollback on new-fleet alarms and retained variant properties.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops.config import DeploymentConfig, ServingConfig
from mlops.constructs.sagemaker_container_access import (
    grant_sagemaker_container,
    grant_volume_key,
)
from mlops.nag import NIST, acknowledge, acknowledge_key_grant, acknowledge_wildcard_resource
from mlops.release_manifest import ModelRelease

VARIANT_NAME = "primary"  # stable: alarms, autoscaling and rollback address it
DATA_CAPTURE_PREFIX = "datacapture"
# The XGBoost framework container runs our inference script from inside model.tar.gz
# (train.py puts it under code/), so network isolation needs no S3 access at start-up.
INFERENCE_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}
# Each model's container names its release; inference.py adds it to every answer, so the
# inference API reports the version that scored the request (canary and rollback included).
MODEL_VERSION_ENV = "MODEL_VERSION"
# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600-28800 s.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
MIN_EXECUTION_TIMEOUT_S, MAX_EXECUTION_TIMEOUT_S = 600, 28800
# Before the first shift SageMaker provisions the whole green fleet (up to max_capacity
# instances, retained from the blue one), and a rollback needs the blue fleet serving again.
PROVISIONING_HEADROOM_S = 1800


@dataclass(frozen=True)
class TrafficShift:
    """The blue/green policy derived from config, with its total duration."""

    routing: sagemaker.CfnEndpoint.TrafficRoutingConfigProperty
    termination_wait_s: int
    maximum_execution_timeout_s: int


def traffic_shift(deployment: DeploymentConfig, fleet_size: int) -> TrafficShift:
    """fleet_size: the instances the variant starts with (min_capacity).

    A 1-instance fleet cannot be split into a canary or linear steps (each step is a share
    of the fleet's instances: CANARY at most 50%, LINEAR 10-50%), so it shifts ALL_AT_ONCE and
    still bakes for bake_minutes under the auto-rollback alarms."""
    wait_s = deployment.bake_minutes * 60
    size = sagemaker.CfnEndpoint.CapacitySizeProperty
    if fleet_size < 2:
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="ALL_AT_ONCE", wait_interval_in_seconds=wait_s
        )
        shifts = 1
    elif deployment.strategy == "canary":
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="CANARY",
            wait_interval_in_seconds=wait_s,
            canary_size=size(type="CAPACITY_PERCENT", value=deployment.canary_percent),
        )
        shifts = 2  # canary, then the rest
    else:
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="LINEAR",
            wait_interval_in_seconds=wait_s,
            linear_step_size=size(type="CAPACITY_PERCENT", value=deployment.linear_step_percent),
        )
        shifts = math.ceil(100 / deployment.linear_step_percent)
    termination_wait_s = wait_s  # keep the blue fleet while the last step bakes
    # Every shift bakes, then the blue fleet waits; plus provisioning the green fleet.
    needed = shifts * wait_s + termination_wait_s + PROVISIONING_HEADROOM_S
    if needed > MAX_EXECUTION_TIMEOUT_S:
        raise ValueError(
            f"deployment takes {needed} s with these bake times; SageMaker allows at most "
            f"{MAX_EXECUTION_TIMEOUT_S} s: shorten bake_minutes or use larger steps"
        )
    return TrafficShift(routing, termination_wait_s, max(needed, MIN_EXECUTION_TIMEOUT_S))


class RealtimeEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        current: ModelRelease,
        previous: ModelRelease | None,
        image_registry: str,
        serving: ServingConfig,
        deployment: DeploymentConfig,
        model_bucket: s3.IBucket,
        capture_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        rollback_alarm_names: list[str],
        artifact_versions: Mapping[int, str] | None = None,
        metric_publish_seconds: int = 60,
    ) -> None:
        """artifact_versions: release version -> S3 version id of its staged copy (recorded on
        the model: CloudFormation's model data takes a key, not an object version).
        metric_publish_seconds: 10 turns on SageMaker's enhanced metrics, which publish the
        invocation metrics every 10 s (the fast rollback alarms); 60 leaves the default."""
        super().__init__(scope, construct_id)
        self._metric_publish_seconds = metric_publish_seconds
        self._artifact_versions = dict(artifact_versions or {})
        self.endpoint_name = endpoint_name
        self.serverless = serving.serverless
        self.role = iam.Role(
            self,
            "ModelRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Models of endpoint {endpoint_name}: read artifacts, pull images.",
        )
        encryption_key.grant_encrypt_decrypt(self.role)
        grant_volume_key(self.role, encryption_key)
        acknowledge_key_grant(self.role)
        self._grant_model_access(model_bucket, [current, previous], image_registry)
        self.capture_bucket = capture_bucket
        # Data capture is written with the model's role.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteDataCapture",
                actions=["s3:PutObject"],
                resources=[capture_bucket.arn_for_objects(f"{DATA_CAPTURE_PREFIX}/*")],
            )
        )
        acknowledge_wildcard_resource(
            self.role,
            capture_bucket.arn_for_objects(f"{DATA_CAPTURE_PREFIX}/*"),
            "SageMaker writes capture files under datacapture/ with generated keys.",
        )

        self.current_config = self._release(
            "Current", current, image_registry, serving, model_bucket, encryption_key
        )
        self.previous_config = (
            self._release(
                "Previous", previous, image_registry, serving, model_bucket, encryption_key
            )
            if previous is not None
            else None
        )
        deployment_config = None
        # Dev's serverless endpoint deploys all at once: it has no instance fleet to shift and
        # no capture or instance alarms; staging and prod carry the guardrails.
        if not serving.serverless:
            self._allow_describing(rollback_alarm_names)
            shift = traffic_shift(deployment, serving.min_capacity)
            deployment_config = sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=shift.routing,
                    termination_wait_in_seconds=shift.termination_wait_s,
                    maximum_execution_timeout_in_seconds=shift.maximum_execution_timeout_s,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name)
                        for name in rollback_alarm_names
                    ]
                ),
            )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.current_config.attr_endpoint_config_name,
            deployment_config=deployment_config,
            # Autoscaling owns the instance count; a deploy must not reset it. Retaining also
            # keeps the old DataCaptureConfig (it cannot be excluded, API_VariantProperty), so
            # a deploy with autoscaling off applies the whole config: README "Serving changes
            # that need two deploys".
            retain_all_variant_properties=serving.autoscaling,
        )

    def _allow_describing(self, alarm_names: list[str]) -> None:
        """SageMaker reads the auto-rollback alarms with the model's execution role: without
        cloudwatch:DescribeAlarms on them the guardrail cannot watch the new fleet.
        https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html"""
        stack = cdk.Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeRollbackAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=[
                    stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name=name,
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                    for name in alarm_names
                ],
            )
        )

    def _grant_model_access(
        self, bucket: s3.IBucket, releases: list[ModelRelease | None], image_registry: str
    ) -> None:
        keys = sorted({r.staged_key for r in releases if r is not None})
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadPinnedArtifacts",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(key) for key in keys],
            )
        )
        grant_sagemaker_container(
            self.role,
            registry_account=image_registry.split(".")[0],
            repositories=[r.image.split(":")[0] for r in releases if r is not None],
            log_group_name="/aws/sagemaker/Endpoints/*",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource scope; image pulls are repository-scoped.",
        )

    def _release(
        self,
        label: str,
        release: ModelRelease,
        image_registry: str,
        serving: ServingConfig,
        model_bucket: s3.IBucket,
        encryption_key: kms.IKey,
    ) -> sagemaker.CfnEndpointConfig:
        # Logical ids carry the version, so a new release is a new model and config (both are
        # immutable in SageMaker) while an unchanged one is left alone.
        scope = Construct(self, f"{label}V{release.version}")
        model = sagemaker.CfnModel(
            scope,
            "Model",
            execution_role_arn=self.role.role_arn,
            # Serverless Inference supports neither network isolation nor data capture.
            enable_network_isolation=not serving.serverless,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=release.image_uri(image_registry),
                # The verified, content-addressed copy only the region's stager may write.
                model_data_url=model_bucket.s3_url_for_object(release.staged_key),
                environment={
                    **INFERENCE_ENVIRONMENT,
                    MODEL_VERSION_ENV: str(release.version),
                },
            ),
            tags=[
                cdk.CfnTag(key="model-package-arn", value=release.model_package_arn),
                cdk.CfnTag(key="model-sha256", value=release.sha256),
                *(
                    [cdk.CfnTag(key="model-artifact-version", value=version)]
                    if (version := self._artifact_versions.get(release.version))
                    else []
                ),
            ],
        )
        model.node.add_dependency(self.role)
        if serving.serverless:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=model.attr_model_name,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=serving.serverless_memory_mb,
                    max_concurrency=serving.serverless_max_concurrency,
                ),
            )
            config = sagemaker.CfnEndpointConfig(scope, "Config", production_variants=[variant])
            acknowledge(
                config,
                f"{NIST}-SageMakerEndpointConfigurationKMSKeyConfigured",
                "Serverless endpoint configs take no KMS key: serverless inference has no volumes.",
            )
            return config
        key_arn = encryption_key.key_arn  # one jsii request per read
        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT_NAME,
            model_name=model.attr_model_name,
            initial_instance_count=serving.min_capacity,
            instance_type=serving.instance_type.name,
            initial_variant_weight=1.0,
        )
        return sagemaker.CfnEndpointConfig(
            scope,
            "Config",
            production_variants=[variant],
            kms_key_id=key_arn if serving.instance_type.supports_volume_kms_key else None,
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=100,
                destination_s3_uri=self.capture_bucket.s3_url_for_object(DATA_CAPTURE_PREFIX),
                kms_key_id=key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=["text/csv"]
                ),
            ),
            # With enhanced metrics on, the frequency applies to the invocation metrics too
            # (SageMaker API reference, MetricsConfig); left out, the config is as before.
            metrics_config=sagemaker.CfnEndpointConfig.MetricsConfigProperty(
                enable_enhanced_metrics=True,
                metric_publish_frequency_in_seconds=self._metric_publish_seconds,
            )
            if self._metric_publish_seconds != 60
            else None,
        )
