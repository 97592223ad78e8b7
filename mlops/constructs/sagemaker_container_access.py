"""What every role that runs a SageMaker container needs: pull the pinned images from the
region's SageMaker registry, and write the container's CloudWatch logs."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from mlops.nag import acknowledge_wildcard_resource


def grant_sagemaker_container(
    role: iam.Role,
    *,
    registry_account: str,
    repositories: Iterable[str],
    log_group_name: str,
) -> None:
    """log_group_name may end in a wildcard, e.g. "/aws/sagemaker/Endpoints/*".

    ecr:GetAuthorizationToken has no resource scope; the caller acknowledges its
    AwsSolutions-IAM5[Resource::*] together with its own resource-less calls.
    """
    stack = cdk.Stack.of(role)
    role.add_to_policy(
        iam.PolicyStatement(
            sid="PullPinnedSageMakerImages",
            actions=[
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            resources=[
                f"arn:{stack.partition}:ecr:{stack.region}:{registry_account}:repository/{repo}"
                for repo in sorted(set(repositories))
            ],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="EcrLoginHasNoResourceScope", actions=["ecr:GetAuthorizationToken"], resources=["*"]
        )
    )
    log_groups = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ContainerLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_groups],
        )
    )
    if "*" in log_group_name:
        acknowledge_wildcard_resource(
            role,
            log_groups,
            "SageMaker names the log groups and streams of the jobs and endpoints it runs.",
        )


def grant_volume_key(role: iam.Role, key: kms.IKey) -> None:
    """A role that creates SageMaker jobs or endpoints with a KMS volume key must let
    SageMaker create a grant on that key for the instances' volumes."""
    role.add_to_policy(
        iam.PolicyStatement(
            sid="SageMakerVolumeKeyGrants",
            actions=["kms:CreateGrant", "kms:DescribeKey"],
            resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )
