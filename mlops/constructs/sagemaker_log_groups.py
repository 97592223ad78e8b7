"""The CloudWatch log groups SageMaker writes to, created by the stacks first so they carry the
stage key and a retention (SageMaker would otherwise create them unencrypted, kept forever).

SageMaker's names: /aws/sagemaker/TrainingJobs and /aws/sagemaker/ProcessingJobs (one per
account and region, shared by every job of that type; tuning jobs' training jobs log to
TrainingJobs) and /aws/sagemaker/Endpoints/<endpoint name>. A group SageMaker created before
the first deployment must be deleted (or imported) first: CloudFormation cannot create a
log group that exists.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

TRAINING_JOBS = "/aws/sagemaker/TrainingJobs"
PROCESSING_JOBS = "/aws/sagemaker/ProcessingJobs"


def endpoint_log_group_name(endpoint_name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint_name}"


def log_retention(retain: bool) -> logs.RetentionDays:
    """Kept a year where data is retained (staging, prod), three months elsewhere."""
    return logs.RetentionDays.ONE_YEAR if retain else logs.RetentionDays.THREE_MONTHS


class SageMakerLogGroup(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_group_name: str,
        encryption_key: kms.IKey,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=log_group_name,
            encryption_key=encryption_key,
            retention=log_retention(retain),
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        )


def retain_log_groups(scope: IConstruct) -> None:
    """Where a stage retains its data, its logs (Lambdas, endpoints, jobs) outlive a stack
    deletion too: the record of what served and what rolled back is evidence.

    CDK's own RemovalPolicies aspect runs inside the jsii runtime; an Aspect written in
    Python costs a callback per construct of the stage (about 280). Same priority as a
    plain Aspects.add, so the order of aspects, and the template, is unchanged."""
    cdk.RemovalPolicies.of(scope).retain(
        apply_to_resource_types=[logs.CfnLogGroup.CFN_RESOURCE_TYPE_NAME],
        priority=cdk.AspectPriority.DEFAULT,
    )
