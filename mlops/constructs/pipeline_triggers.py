"""What starts the training pipeline: a schedule, and new objects under the raw-data prefix."""

from __future__ import annotations

import jsii
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct


@jsii.implements(events.IRuleTarget)
class StartPipelineExecution:
    """EventBridge target that starts a SageMaker pipeline with its default parameters.

    aws-cdk-lib has no L2 target for SageMaker pipelines, only the CloudFormation shape.
    """

    def __init__(self, pipeline_arn: str, role: iam.IRole) -> None:
        self.pipeline_arn, self.role = pipeline_arn, role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]
            )
        )

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self.pipeline_arn,
            role=self.role,
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
            ),
        )


class PipelineTriggers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_arn: str,
        schedule: str,
        data_bucket: s3.IBucket,
        raw_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "StartRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="EventBridge starts this training pipeline and nothing else.",
        )
        target: events.IRuleTarget = StartPipelineExecution(pipeline_arn, self.role)  # type: ignore[assignment]
        self.schedule_rule = events.Rule(
            self,
            "Schedule",
            description="Retrain on a schedule.",
            schedule=events.Schedule.expression(schedule),
            targets=[target],
        )
        # Needs EventBridge notifications on the bucket (DataStack enables them).
        self.new_data_rule = events.Rule(
            self,
            "NewRawData",
            description="Retrain when new raw data lands.",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [data_bucket.bucket_name]},
                    "object": {"key": [{"prefix": raw_prefix}]},
                },
            ),
            targets=[target],
        )
