"""CloudWatch alarms on an endpoint's 1-minute metrics, the SNS topic they notify, and the
alarms the blue/green deployment and the rollback Lambda watch: 5xx error rate and p99
latency on 1-minute metrics, plus the same two on 10-second metrics when the environment
asks for them (alarms.rollback_metric_seconds: 10)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlops.alarm_shape import (
    DATAPOINTS_TO_ALARM,
    EVALUATION_PERIODS,
    FAST_DATAPOINTS,
    FAST_PERIOD_SECONDS,
    PERIOD_SECONDS,
)
from mlops.config import AlarmConfig, InstanceType
from mlops.constructs.alert_topic import alert_topic

NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
# The alarms' periods and "M of N" live in mlops/alarm_shape.py (read without aws_cdk).
PERIOD = cdk.Duration.seconds(PERIOD_SECONDS)
FAST_PERIOD = cdk.Duration.seconds(FAST_PERIOD_SECONDS)
CPU_ALARM_FRACTION = 0.8  # of all cores (CPUUtilization is summed over cores: 100% per core)
MEMORY_ALARM_PERCENT = 85


class EndpointAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        thresholds: AlarmConfig,
        instance_type: InstanceType | None,
        encryption_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = alert_topic(
            self,
            "Notifications",
            display_name=f"{endpoint_name} alarms",
            encryption_key=encryption_key,
        )
        dimensions = {"EndpointName": endpoint_name, "VariantName": variant_name}

        def metric(
            name: str,
            statistic: str,
            namespace: str = NAMESPACE,
            period: cdk.Duration = PERIOD,
        ) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=period,
            )

        self.latency_metric = metric("ModelLatency", "p99")
        # Invocation5XXErrors is 0/1 per request: its Average is the error RATE.
        self.error_rate_metric = metric("Invocation5XXErrors", "Average")
        self.invocations_metric = metric("Invocations", "Sum")

        self.latency = self._alarm(
            "ModelLatencyP99",
            self.latency_metric,
            threshold=thresholds.latency_p99_ms * 1000,  # ModelLatency is in microseconds
            description=f"p99 model latency above {thresholds.latency_p99_ms} ms",
        )
        self.error_rate = self._alarm(
            "ErrorRate5xx",
            self.error_rate_metric,
            threshold=thresholds.error_rate_5xx,
            description=f"5xx error rate above {thresholds.error_rate_5xx:.2%}",
        )
        self.alarms = [self.latency, self.error_rate]
        self.fast_alarms: list[cloudwatch.Alarm] = []
        if thresholds.rollback_metric_seconds == 10:
            self.fast_alarms = [
                self._alarm(
                    "ErrorRate5xxFast",
                    metric("Invocation5XXErrors", "Average", period=FAST_PERIOD),
                    threshold=thresholds.error_rate_5xx,
                    description=f"5xx error rate above {thresholds.error_rate_5xx:.2%} "
                    "for a minute (10-second metrics)",
                    datapoints=FAST_DATAPOINTS,
                    evaluation_periods=FAST_DATAPOINTS,
                ),
                self._alarm(
                    "ModelLatencyP99Fast",
                    metric("ModelLatency", "p99", period=FAST_PERIOD),
                    threshold=thresholds.latency_p99_ms * 1000,
                    description=f"p99 model latency above {thresholds.latency_p99_ms} ms "
                    "for a minute (10-second metrics)",
                    datapoints=FAST_DATAPOINTS,
                    evaluation_periods=FAST_DATAPOINTS,
                ),
            ]
            self.alarms += self.fast_alarms
        if thresholds.min_invocations_per_minute > 0:
            self.alarms.append(
                self._alarm(
                    "InvocationDrop",
                    self.invocations_metric,
                    threshold=thresholds.min_invocations_per_minute,
                    description=f"fewer than {thresholds.min_invocations_per_minute} invocations a minute",
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    missing=cloudwatch.TreatMissingData.BREACHING,
                )
            )
        if instance_type is not None:  # serverless endpoints have no instance metrics
            self.alarms.append(
                self._alarm(
                    "CpuUtilization",
                    metric("CPUUtilization", "Average", INSTANCE_NAMESPACE),
                    threshold=CPU_ALARM_FRACTION * 100 * instance_type.vcpus,
                    description=f"CPU above {CPU_ALARM_FRACTION:.0%} of {instance_type.vcpus} cores",
                )
            )
            self.alarms.append(
                self._alarm(
                    "MemoryUtilization",
                    metric("MemoryUtilization", "Average", INSTANCE_NAMESPACE),
                    threshold=MEMORY_ALARM_PERCENT,
                    description=f"memory above {MEMORY_ALARM_PERCENT}%",
                )
            )
        notify = cw_actions.SnsAction(self.topic)  # stateless: one for every action
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)

    @property
    def rollback_alarms(self) -> list[cloudwatch.Alarm]:
        """What the blue/green deployment and the rollback Lambda watch. The 1-minute alarms
        stay beside the fast ones: at low traffic a 10-second window is often empty (counted
        as not breaching), so 6 of 6 may never be met while 3 bad minutes still are."""
        return [self.error_rate, self.latency, *self.fast_alarms]

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        datapoints: int = DATAPOINTS_TO_ALARM,
        evaluation_periods: int = EVALUATION_PERIODS,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=comparison,
            treat_missing_data=missing,
            alarm_description=description,
        )
