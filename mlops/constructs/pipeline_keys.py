"""The delivery pipeline's KMS keys: bounded use, kept as long as the buckets they encrypt.

CDK Pipelines grants the pipeline role kms:* crypto actions on "*" (its cross-region
replication keys live in support stacks and are imported by alias). This narrows that
statement to the key ARNs of the pipeline's own regions, selected by the aliases of its
artifact keys, and retains the keys with the artifact buckets (the library deletes them).
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import pipelines
from constructs import IConstruct

from mlops.nag import acknowledge, render_for_finding


def artifact_keys(pipeline: pipelines.CodePipeline) -> list[tuple[kms.Key, kms.Alias]]:
    """(key, alias) of the artifact bucket and of every cross-region replication bucket."""
    home = pipeline.pipeline.artifact_bucket.encryption_key
    assert isinstance(home, kms.Key), "CDK Pipelines creates its artifact key"
    candidates = [(cdk.Stack.of(pipeline), home)] + [
        (support.stack, key)
        for support in pipeline.pipeline.cross_region_support.values()
        for key in support.stack.node.find_all()
        if isinstance(key, kms.Key)
    ]
    found: list[tuple[kms.Key, kms.Alias]] = []
    for stack, key in candidates:
        arn = stack.resolve(key.key_arn)
        found += [
            (key, alias)
            for alias in stack.node.find_all()
            if isinstance(alias, kms.Alias)
            and stack.resolve(alias.node.default_child.target_key_id) == arn  # type: ignore[union-attr]
        ]
    return found


def retain_artifact_keys(pipeline: pipelines.CodePipeline) -> None:
    """Objects in a retained bucket are unreadable once their key is gone."""
    for key, alias in artifact_keys(pipeline):
        key.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        alias.apply_removal_policy(cdk.RemovalPolicy.RETAIN)


@jsii.implements(cdk.IAspect)
class BoundPipelineKeyUse:
    """Replace a KMS statement's "*" resource in the pipeline role's policy by the artifact
    keys' regions, conditioned on their aliases. Runs as an Aspect: the library adds
    statements until synthesis."""

    def __init__(self, pipeline: pipelines.CodePipeline) -> None:
        self._pipeline = pipeline
        self._policy_path = f"{pipeline.pipeline.role.node.path}/DefaultPolicy/Resource"

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, iam.CfnPolicy) or node.node.path != self._policy_path:
            return
        stack = cdk.Stack.of(node)
        document = stack.resolve(node.policy_document)
        keys = artifact_keys(self._pipeline)
        # The home key is already named by ARN; the support stacks' keys only by alias.
        regions = sorted({cdk.Stack.of(k).region for k, _ in keys} - {stack.region})
        aliases = sorted(alias.alias_name for _, alias in keys)
        for statement in document.get("Statement", []):
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement.get("Resource", [])
            resources = [resources] if not isinstance(resources, list) else resources
            if "*" not in resources or not all(a.startswith("kms:") for a in actions):
                continue
            if "Condition" in statement:
                raise ValueError("pipeline role: a conditioned KMS grant on '*' is unexpected")
            bounded = [r for r in resources if r != "*"] + [
                f"arn:{stack.partition}:kms:{region}:{stack.account}:key/*" for region in regions
            ]
            statement["Resource"] = bounded
            statement["Condition"] = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": aliases}}
            # The whole (resolved) document, not a property override: cdk-nag reads the
            # construct's properties, and the library has added every statement by now.
            node.policy_document = document
            reason = (
                "The pipeline's artifact keys in its regions (home and cross-region support "
                "stacks), selected by their aliases (kms:ResourceAliases condition)."
            )
            for action in actions:
                if "*" in action:
                    acknowledge(node, f"AwsSolutions-IAM5[Action::{action}]", reason)
            for resource in bounded:
                rendered = render_for_finding(node, resource)
                if "*" in rendered:
                    acknowledge(node, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)


@jsii.implements(cdk.IAspect)
class KeysOnlyThroughS3:
    """Other accounts' roles (the target accounts' CDK deploy roles) may use an artifact key
    only through S3 in the key's region (kms:ViaService): they read pipeline artifacts, and
    nothing else. Replaces the resolved key policy, which cdk-nag and CloudFormation read."""

    def __init__(self, pipeline: pipelines.CodePipeline) -> None:
        self._paths = {key.node.default_child.node.path for key, _ in artifact_keys(pipeline)}  # type: ignore[union-attr]

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, kms.CfnKey) or node.node.path not in self._paths:
            return
        stack = cdk.Stack.of(node)
        document = stack.resolve(node.key_policy)
        own_root = {"AWS": f"arn:{stack.partition}:iam::{stack.account}:root"}
        changed = False
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Allow" or statement.get("Principal") == own_root:
                continue
            if "Condition" in statement:
                raise ValueError(f"{node.node.path}: a conditioned key grant is unexpected")
            via = f"s3.{stack.region}.amazonaws.com"
            statement["Condition"] = {"StringEquals": {"kms:ViaService": via}}
            changed = True
        if changed:
            node.key_policy = document
