"""Target tracking on invocations per instance for an instance-backed endpoint variant."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from constructs import Construct

from mlops.config import ServingConfig

SCALE_OUT_COOLDOWN = cdk.Duration.seconds(300)
# Scale in slowly: a brief lull must not drop capacity that the next burst needs.
SCALE_IN_COOLDOWN = cdk.Duration.seconds(600)


class EndpointAutoscaling(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        serving: ServingConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{variant_name}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=serving.min_capacity,
            max_capacity=serving.max_capacity,
        )
        # Target from the load-test method in docs/serving.md: the sustained invocations per
        # minute one instance serves within the latency objective, times a 0.5 safety factor.
        self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=serving.invocations_per_instance_target,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_out_cooldown=SCALE_OUT_COOLDOWN,
            scale_in_cooldown=SCALE_IN_COOLDOWN,
        )
