"""One CloudWatch dashboard per endpoint: traffic, errors, latency, capacity, alarms."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from mlops.constructs.endpoint_alarms import EndpointAlarms


class EndpointDashboard(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint_name: str, alarms: EndpointAlarms
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=None)
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown=f"# Endpoint {endpoint_name}", width=24, height=1),
            cloudwatch.GraphWidget(
                title="Invocations per minute", left=[alarms.invocations_metric], width=8
            ),
            cloudwatch.GraphWidget(
                title="5xx error rate", left=[alarms.error_rate_metric], width=8
            ),
            cloudwatch.GraphWidget(
                title="Model latency p99 (us)", left=[alarms.latency_metric], width=8
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms.alarms, width=24),
        )
