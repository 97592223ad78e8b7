"""A role in the serving account that the delivery pipeline's check of this stage (one
CodeBuild role in the tooling account, named) assumes to check and invoke the endpoint after
a deployment: nothing more."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops.constructs import cdk_values


class SmokeTestAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        endpoint_name: str,
        tooling_account: str,
        checker_role_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.checker_role_name = checker_role_name
        checker = f"arn:{stack.partition}:iam::{tooling_account}:role/{checker_role_name}"
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            # The account as principal (a role ARN principal must exist when the policy is
            # written), narrowed to the one CodeBuild role by aws:PrincipalArn.
            assumed_by=iam.AccountPrincipal(tooling_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": checker}}
            ),
            description=f"Delivery pipeline post-deploy checks of {endpoint_name}.",
            max_session_duration=cdk_values.hours(1),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
                resources=[
                    stack.format_arn(
                        service="sagemaker",
                        resource="endpoint",
                        resource_name=endpoint_name.lower(),
                    )
                ],
            )
        )
