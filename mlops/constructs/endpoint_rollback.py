"""The rollback Lambda for degradation AFTER a deployment (native guardrails own the
deployment window): EventBridge alarm state changes of this endpoint's alarms -> handler."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops.constructs.python_function import PythonFunction
from mlops.constructs.sagemaker_container_access import grant_volume_key
from mlops.nag import acknowledge_key_grant, acknowledge_wildcard_resource
from mlops.release_manifest import ModelRelease


class EndpointRollback(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        current_config_name: str,
        previous_config_name: str | None,
        current: ModelRelease,
        alarms: list[cloudwatch.Alarm],
        topic: sns.ITopic,
        encryption_key: kms.IKey,
        manifest_hint: str,
        role_name: str | None = None,
    ) -> None:
        """role_name: fixed, so the hub's model package group can name it."""
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.function = PythonFunction(
            self,
            "Rollback",
            source="rollback",
            description=f"Roll {endpoint_name} back to the previous release on alarm.",
            encryption_key=encryption_key,
            powertools=True,
            timeout_seconds=120,
            role_name=role_name,
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "ALARM_NAMES": ",".join(alarm.alarm_name for alarm in alarms),
                "CURRENT_ENDPOINT_CONFIG_NAME": current_config_name,
                "PREVIOUS_ENDPOINT_CONFIG_NAME": previous_config_name or "",
                "CURRENT_MODEL_PACKAGE_ARN": current.model_package_arn,
                "TOPIC_ARN": topic.topic_arn,
                "MANIFEST_HINT": manifest_hint,
            },
        )
        role = self.function.role
        alarm_arns = [alarm.alarm_arn for alarm in alarms]  # one jsii request each: read once
        endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower()
        )
        config_arn = stack.format_arn(
            service="sagemaker", resource="endpoint-config", resource_name="*"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RollThisEndpointBack",
                actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
                resources=[endpoint_arn, config_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RejectTheBadPackage",
                actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                resources=[current.model_package_arn],
            )
        )
        # A late or retried event must not roll back after its alarm recovered.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTheCurrentStateOfTheseAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=alarm_arns,
            )
        )
        topic.grant_publish(role)
        encryption_key.grant_encrypt_decrypt(role)
        grant_volume_key(role, encryption_key)
        acknowledge_key_grant(role)
        acknowledge_wildcard_resource(
            role,
            config_arn,
            "UpdateEndpoint authorizes the target endpoint config too; its name is generated "
            "by CloudFormation, and the endpoint ARN narrows what can be updated.",
        )
        self.rule = events.Rule(
            self,
            "OnAlarm",
            description=f"{endpoint_name} alarms entering ALARM",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=alarm_arns,
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=2)],
        )
