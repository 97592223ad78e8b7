"""cdk-nag acknowledgments for the IAM policies CDK Pipelines generates.

The library writes these grants itself (artifact bucket, artifact key, CodeBuild logs and
report groups, bootstrap roles); we cannot narrow them without forking it. Each wildcard is
acknowledged on the one policy that has it, with the reason for its kind, by an Aspect,
because the library adds statements until synthesis.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from mlops.nag import acknowledge, render_for_finding

_ACTION_REASONS = (
    (re.compile(r"^kms:"), "CDK Pipelines' grant on the pipeline's own artifact key."),
    (re.compile(r"^s3:"), "CDK Pipelines' grant on the pipeline's artifact buckets only."),
)
_RESOURCE_REASONS = (
    (
        re.compile(r"ArtifactsBucket|^arn:aws:s3:::delivery-support-.*/\*$"),
        "Objects in the pipeline's artifact buckets; keys are generated per execution.",
    ),
    (
        re.compile(r":report-group/"),
        "CodeBuild report groups of this build project, named by CodeBuild.",
    ),
    (
        re.compile(r":log-group:/aws/codebuild/"),
        "Log streams of this build project, named by CodeBuild.",
    ),
    (
        re.compile(r":iam::\d{12}:role/\*$"),
        "Self-mutation and asset publishing assume the CDK bootstrap roles, limited by their bootstrap-role tag.",
    ),
    (
        re.compile(r"^\*$"),
        "Calls without resource scope (e.g. cloudformation:DescribeStacks, sts) made by the pipeline's own roles.",
    ),
)


def _reason(table: tuple[tuple[re.Pattern[str], str], ...], value: str) -> str | None:
    return next((reason for pattern, reason in table if pattern.search(value)), None)


@jsii.implements(cdk.IAspect)
class AcknowledgePipelineGrants:
    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, iam.CfnPolicy):
            return
        document = cdk.Stack.of(node).resolve(node.policy_document)
        for statement in document.get("Statement", []):
            actions = statement.get("Action", [])
            for action in [actions] if isinstance(actions, str) else actions:
                reason = _reason(_ACTION_REASONS, action) if "*" in action else None
                if reason:
                    acknowledge(node, f"AwsSolutions-IAM5[Action::{action}]", reason)
            resources = statement.get("Resource", [])
            for resource in [resources] if not isinstance(resources, list) else resources:
                rendered = render_for_finding(node, resource)
                reason = _reason(_RESOURCE_REASONS, rendered) if "*" in rendered else None
                if reason:
                    acknowledge(node, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)
