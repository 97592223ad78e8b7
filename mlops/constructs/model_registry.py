"""The Model Registry of an environment family: a model package group whose packages only the
serving stages' rollback roles may touch from other accounts (serving stacks resolve nothing
at synth: releases.yaml pins the version)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group_name: str,
        description: str,
        rollback_roles: list[tuple[str, str]],
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.group_name = group_name
        self.group_arn = stack.format_arn(
            service="sagemaker", resource="model-package-group", resource_name=group_name
        )
        self.packages_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group_name}/*"
        )
        policy = None
        if rollback_roles:
            arns = sorted(f"arn:{stack.partition}:iam::{a}:role/{n}" for a, n in rollback_roles)
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        # A serving region's rollback Lambda rejects the package it rolled
                        # back from; nobody else in a serving account may read or edit one
                        # (promote reads the registry with hub credentials). Accounts as
                        # principals plus aws:PrincipalArn: naming a role that does not exist
                        # yet (later waves) would fail to deploy.
                        "Sid": "RollbackRolesRejectModels",
                        "Effect": "Allow",
                        "Principal": {
                            "AWS": sorted(
                                {f"arn:{stack.partition}:iam::{a}:root" for a, _ in rollback_roles}
                            )
                        },
                        "Action": [
                            "sagemaker:DescribeModelPackage",
                            "sagemaker:UpdateModelPackage",
                        ],
                        "Resource": self.packages_arn,
                        "Condition": {"ArnEquals": {"aws:PrincipalArn": arns}},
                    }
                ],
            }
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=group_name,
            model_package_group_description=description,
            model_package_group_policy=policy,
        )
        self.group.apply_removal_policy(
            cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY
        )
