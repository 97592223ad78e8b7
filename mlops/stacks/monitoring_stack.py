"""Monitoring of one serving (environment, region): the scheduled drift and model-quality job,
its alarms, and the rate-limited retrain gate that closes the loop to the hub's pipeline.

Baseline: the drift job reads baseline.json from INSIDE the served model.tar.gz (train.py
puts it there) in the stage's model bucket: the replicated model carries its own baseline,
so no serving stage needs access to the hub's buckets.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.drift_monitor import DriftMonitor, MonitoredEndpoint
from mlops.constructs.failure_alerts import FailureAlerts
from mlops.constructs.realtime_endpoint import VARIANT_NAME
from mlops.constructs.retrain_trigger import HubPipeline, RetrainGate
from mlops.naming import (
    endpoint_name,
    model_package_group_name,
    retrain_gate_role_name,
    retrain_starter_role_name,
    training_pipeline_name,
)
from mlops.release_manifest import ModelRelease
from mlops.stacks.data_stack import DataStack
from mlops.stacks.serving_stack import ServingStack


def baseline_key(release: ModelRelease) -> str:
    """The object holding the served model's baseline: its verified model.tar.gz in the stage's
    model bucket (baseline.json inside)."""
    return release.staged_key


def metrics_namespace(platform: PlatformConfig) -> str:
    return f"{platform.project}/monitoring"


def hub_pipeline(platform: PlatformConfig, environment: EnvironmentConfig) -> HubPipeline:
    hub = platform.registry_of(environment)
    return HubPipeline(
        account=hub.account,
        region=hub.home_region,
        pipeline_name=training_pipeline_name(platform, hub),
        starter_role_name=retrain_starter_role_name(platform, hub),
        model_package_group_name=model_package_group_name(platform, hub),
    )


class MonitoringStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        environment: EnvironmentConfig,
        release: ModelRelease,
        data: DataStack,
        serving: ServingStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        hub = platform.registry_of(environment)
        assert hub.training is not None, "registry_of returns an environment that trains"
        buckets = data.buckets_for(self)
        self.monitor = DriftMonitor(
            self,
            "DriftMonitor",
            endpoint=MonitoredEndpoint(
                endpoint_name=endpoint_name(platform, environment),
                variant_name=VARIANT_NAME,
                baseline_key=baseline_key(release),
            ),
            drift=environment.drift,
            auc_threshold=hub.training.auc_threshold,
            instance_type=hub.training.processing_instance_type,
            data_bucket=buckets.data,
            model_bucket=buckets.models,
            encryption_key=data.key,
            metrics_namespace=metrics_namespace(platform),
            topic=serving.alarms.topic,
        )
        self.retrain = RetrainGate(
            self,
            "RetrainGate",
            alarm=self.monitor.drift_alarm,
            hub=hub_pipeline(platform, environment),
            gate_role_name=retrain_gate_role_name(platform, environment, self.region),
            min_hours=environment.drift.retrain_min_hours,
            environment_name=environment.name,
            encryption_key=data.key,
        )
        self.failure_alerts = FailureAlerts(
            self, "FailureAlerts", topic=serving.alarms.topic, encryption_key=data.key
        )
        self.failure_alerts.watch_function(self.retrain.gate, invoked_async=True)
        self.failure_alerts.watch_rule(self.retrain.rule)
        self.failure_alerts.watch_rule(self.retrain.recheck_rule)
        self.failure_alerts.watch_processing_jobs(self.monitor.job_prefix, "Drift monitoring")
