"""cdk-nag acknowledgments for the IAM policies CDK Pipelines generates.

The library writes these grants itself (artifact bucket, artifact key, CodeBuild logs and
report groups, bootstrap roles); we cannot narrow them without forking it. A statement's
wildcard findings are acknowledged only when EVERY action of the statement is on the
allow-list of one kind of grant and every wildcard resource is that kind's: a statement the
library (or we) add with any other action stays a finding. Runs as an Aspect, because the
library adds statements until synthesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from mlops.nag import acknowledge, render_for_finding


@dataclass(frozen=True)
class PipelineGrant:
    """One kind of grant the library writes: its exact actions, its wildcard resources."""

    actions: frozenset[str]
    resources: re.Pattern[str]
    reason: str


ARTIFACT_OBJECTS = frozenset(
    {
        "s3:Abort*",
        "s3:DeleteObject*",
        "s3:GetBucket*",
        "s3:GetObject*",
        "s3:List*",
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:PutObjectLegalHold",
        "s3:PutObjectRetention",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionAcl",
        "s3:PutObjectVersionTagging",
    }
)
ARTIFACT_KEY = frozenset(
    {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"}
)

GRANTS = (
    PipelineGrant(
        ARTIFACT_OBJECTS,
        re.compile(r"^<PipelineArtifactsBucket\w+\.Arn>/\*$|^arn:aws:s3:::delivery-support-.*/\*$"),
        "Objects in the pipeline's artifact buckets; keys are generated per execution.",
    ),
    PipelineGrant(
        ARTIFACT_KEY,
        re.compile(r"^<PipelineArtifactsBucketEncryptionKey\w+\.Arn>$"),
        "CDK Pipelines' grant on the pipeline's own artifact key (GenerateDataKey*/ReEncrypt* "
        "are the library's spelling of the data-key calls S3 makes).",
    ),
    PipelineGrant(
        frozenset({"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}),
        re.compile(r":log-group:/aws/codebuild/"),
        "Log streams of this build project, named by CodeBuild.",
    ),
    PipelineGrant(
        frozenset(
            {
                "codebuild:BatchPutCodeCoverages",
                "codebuild:BatchPutTestCases",
                "codebuild:CreateReport",
                "codebuild:CreateReportGroup",
                "codebuild:UpdateReport",
            }
        ),
        re.compile(r":report-group/"),
        "CodeBuild report groups of this build project, named by CodeBuild.",
    ),
    PipelineGrant(
        frozenset({"sts:AssumeRole"}),
        re.compile(r"^arn:\*:iam::\d{12}:role/\*$"),
        "Self-mutation and asset publishing assume the CDK bootstrap roles, limited by their "
        "bootstrap-role tag (iam:ResourceTag/aws-cdk:bootstrap-role condition).",
    ),
    PipelineGrant(
        frozenset({"cloudformation:DescribeStacks", "s3:ListBucket"}),
        re.compile(r"^\*$"),
        "Self-mutation reads stack outputs and lists buckets before deploying the pipeline "
        "stack: read-only calls the library grants without resource scope.",
    ),
    PipelineGrant(
        frozenset({"codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"}),
        re.compile(r"^\*$"),
        "The asset-publishing action starts the asset CodeBuild projects the library creates "
        "in this pipeline; the library grants it without resource scope.",
    ),
)


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def grant_of(actions: list[str], rendered: list[str]) -> PipelineGrant | None:
    """The one kind of grant a statement is, or None: all its actions on that kind's list and
    all its wildcard resources that kind's."""
    wildcards = [r for r in rendered if "*" in r]
    for grant in GRANTS:
        if set(actions) <= grant.actions and all(grant.resources.search(r) for r in wildcards):
            return grant
    return None


@jsii.implements(cdk.IAspect)
class AcknowledgePipelineGrants:
    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, iam.CfnPolicy):
            return
        document = cdk.Stack.of(node).resolve(node.policy_document)
        for statement in document.get("Statement", []):
            actions = [str(a) for a in _listed(statement.get("Action", []))]
            rendered = [render_for_finding(node, r) for r in _listed(statement.get("Resource", []))]  # type: ignore[arg-type]
            grant = grant_of(actions, rendered)
            if grant is None:
                continue
            for action in actions:
                if "*" in action:
                    acknowledge(node, f"AwsSolutions-IAM5[Action::{action}]", grant.reason)
            for resource in rendered:
                if "*" in resource:
                    acknowledge(node, f"AwsSolutions-IAM5[Resource::{resource}]", grant.reason)
