"""The cheaper forms of the stage-wide rules (no Python Aspect, fewer jsii calls) lose nothing:
a policy the walk did not see still fails synth, batched acknowledgements are each recorded,
only log groups are retained, and outside the stages only the delivery stack's roles
acknowledge their policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from cdk_nag import NIST80053R5Checks
from conftest import cdk_json_context, default_releases

from mlops.app_builder import AppOptions, build_app
from mlops.app_context import NO_NODE_STACK_TRACES
from mlops.config import PlatformConfig
from mlops.constructs.sagemaker_log_groups import retain_log_groups
from mlops.nag import NIST, acknowledge_each, acknowledge_role_scoped_policies, render_for_finding
from mlops.stacks.delivery_stack import DeliveryStack

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
INLINE = f"{NIST}-IAMNoInlinePolicy"


def _granted_role(stack: cdk.Stack, name: str) -> iam.Role:
    """A role whose grant renders a CfnPolicy (RoleDefaultPolicy...) and nothing else NIST
    flags: one action on one ARN."""
    role = iam.Role(stack, name, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sqs:SendMessage"],
            resources=[f"arn:aws:sqs:eu-west-1:123456789012:{name.lower()}"],
        )
    )
    return role


def _violations(outdir: Path) -> list[tuple[str, str]]:
    report = json.loads((outdir / "validation-report.json").read_text())
    return sorted(
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    )


def test_policies_present_at_the_walk_are_acknowledged_and_a_later_one_fails_synth(
    tmp_path: Path,
) -> None:
    app = cdk.App(outdir=str(tmp_path))
    cdk.Validations.of(app).add_plugins(NIST80053R5Checks(app))
    stage = cdk.Stage(app, "Place", env=ENV)
    stack = cdk.Stack(stage, "Roles")
    _granted_role(stack, "Early")
    acknowledge_role_scoped_policies(stage)
    _granted_role(stack, "Late")  # after the walk: nobody acknowledged its policy
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert _violations(tmp_path) == [(INLINE, "Place/Roles/Late/DefaultPolicy/Resource")]


def test_a_walked_stage_synthesizes_without_an_inline_policy_finding(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    cdk.Validations.of(app).add_plugins(NIST80053R5Checks(app))
    stage = cdk.Stage(app, "Place", env=ENV)
    stack = cdk.Stack(stage, "Roles")
    _granted_role(stack, "Early")
    _granted_role(stack, "Other")
    acknowledge_role_scoped_policies(stage)
    app.synth()
    assert not (tmp_path / "validation-report.json").exists() or _violations(tmp_path) == []


def _acknowledged(construct: Any) -> list[tuple[str, str]]:
    return [
        next(iter(entry.data.items()))
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    ]


def test_acknowledge_each_records_every_rule_in_order() -> None:
    stack = cdk.Stack(cdk.App(), "Stack", env=ENV)
    bucket = s3.Bucket(stack, "Bucket")
    acknowledge_each(
        bucket,
        {
            "AwsSolutions-S1": "The access log bucket itself; it cannot log into itself.",
            f"{NIST}-S3BucketLoggingEnabled": "Same bucket, same reason as AwsSolutions-S1 here.",
        },
    )
    assert _acknowledged(bucket) == [
        ("Annotation::AwsSolutions-S1", "The access log bucket itself; it cannot log into itself."),
        (
            f"Annotation::{NIST}-S3BucketLoggingEnabled",
            "Same bucket, same reason as AwsSolutions-S1 here.",
        ),
    ]


def test_acknowledge_each_refuses_a_vague_reason_and_records_nothing() -> None:
    stack = cdk.Stack(cdk.App(), "Stack", env=ENV)
    bucket = s3.Bucket(stack, "Bucket")
    with pytest.raises(ValueError, match=f"{NIST}-S3BucketLoggingEnabled needs a specific"):
        acknowledge_each(
            bucket,
            {
                "AwsSolutions-S1": "The access log bucket itself; it cannot log into itself.",
                f"{NIST}-S3BucketLoggingEnabled": "same",
            },
        )
    assert _acknowledged(bucket) == []


def test_retain_log_groups_retains_log_groups_only(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    kept = cdk.Stage(app, "Kept", env=ENV)
    plain = cdk.Stage(app, "Plain", env=ENV)
    for stage in (kept, plain):
        stack = cdk.Stack(stage, "Logs")
        logs.LogGroup(stack, "Group", removal_policy=cdk.RemovalPolicy.DESTROY)
        s3.Bucket(stack, "Scratch", removal_policy=cdk.RemovalPolicy.DESTROY)
    retain_log_groups(kept)
    assembly = app.synth()
    policies = {}
    for stage_name in ("Kept", "Plain"):
        template = assembly.get_nested_assembly(f"assembly-{stage_name}").stacks[0].template
        policies[stage_name] = {
            resource["Type"]: resource.get("DeletionPolicy")
            for resource in template["Resources"].values()
        }
    assert policies["Kept"] == {"AWS::Logs::LogGroup": "Retain", "AWS::S3::Bucket": "Delete"}
    assert policies["Plain"] == {"AWS::Logs::LogGroup": "Delete", "AWS::S3::Bucket": "Delete"}


def test_repeated_acknowledgements_of_one_construct_are_each_recorded_on_it() -> None:
    """acknowledge_each reuses one Validations per construct: a second call on the same
    construct adds to it, in order, and a call on another construct stays on that one."""
    stack = cdk.Stack(cdk.App(), "Stack", env=ENV)
    bucket, other = s3.Bucket(stack, "Bucket"), s3.Bucket(stack, "Other")
    first = ("AwsSolutions-S1", "The access log bucket itself; it cannot log into itself.")
    second = (f"{NIST}-S3BucketLoggingEnabled", "Same bucket, same reason as AwsSolutions-S1.")
    acknowledge_each(bucket, dict([first]))
    acknowledge_each(other, dict([second]))
    acknowledge_each(bucket, dict([second]))
    assert _acknowledged(bucket) == [(f"Annotation::{rule}", why) for rule, why in (first, second)]
    assert _acknowledged(other) == [(f"Annotation::{second[0]}", second[1])]


def test_a_finding_renders_literal_arns_as_they_are_and_tokens_as_cdk_nag_does() -> None:
    """A literal needs no resolve (no jsii request); a token still renders as cdk-nag prints
    it, and an already resolved value too."""
    stack = cdk.Stack(cdk.App(), "Stack", env=ENV)
    bucket = s3.Bucket(stack, "Bucket")
    literal = "arn:aws:s3:::some-bucket/*"
    assert render_for_finding(stack, literal) == literal
    logical_id = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    assert render_for_finding(stack, bucket.arn_for_objects("*")) == f"<{logical_id}.Arn>/*"
    assert render_for_finding(stack, {"Ref": logical_id}) == f"<{logical_id}>"  # type: ignore[arg-type]


def test_the_pipeline_grants_aspect_on_a_role_sees_later_statements_and_nothing_outside() -> None:
    """The delivery stack puts AcknowledgePipelineGrants on each role, not on the whole
    stack: a statement added after the aspect (as the library does until synthesis) is still
    acknowledged, and a policy outside the role's subtree is not, so it fails synth."""
    from mlops.constructs.pipeline_nag import AcknowledgePipelineGrants

    app = cdk.App()
    stack = cdk.Stack(app, "Stack", env=ENV)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
    cdk.Aspects.of(role).add(AcknowledgePipelineGrants())
    start_builds = iam.PolicyStatement(actions=["codebuild:StartBuild"], resources=["*"])
    role.add_to_principal_policy(start_builds)
    outside = iam.Policy(stack, "Outside", statements=[start_builds], roles=[role])
    app.synth()
    inside = role.node.find_child("DefaultPolicy").node.default_child
    assert [rule for rule, _ in _acknowledged(inside)] == [
        "Annotation::AwsSolutions-IAM5[Resource::*]"
    ]
    assert _acknowledged(outside.node.default_child) == []


@pytest.mark.parametrize("outside", [False, True], ids=["inside only", "a policy outside"])
def test_a_grant_policy_outside_the_roles_fails_synth(outside: bool) -> None:
    """The other half of the test above, through the rule pack: the role's own grants pass,
    the same statement in a policy outside the role's subtree fails synth."""
    from cdk_nag import AwsSolutionsChecks

    from mlops.constructs.pipeline_nag import AcknowledgePipelineGrants

    app = cdk.App()
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Stack", env=ENV)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
    cdk.Aspects.of(role).add(AcknowledgePipelineGrants())
    start_builds = iam.PolicyStatement(actions=["codebuild:StartBuild"], resources=["*"])
    role.add_to_principal_policy(start_builds)
    if not outside:
        app.synth()
        return
    iam.Policy(stack, "Outside", statements=[start_builds], roles=[role])
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    assert "Stack/Outside/Resource" in str(failure.value)


def test_outside_the_stages_only_the_delivery_roles_policies_are_acknowledged(
    tmp_path: Path, platform: PlatformConfig
) -> None:
    """The whole app through its real rule packs: no aspect acknowledges IAMNoInlinePolicy
    app-wide. Outside the stages a policy can sit in the delivery stack or in a cross-region
    support stack (CDK Pipelines fills those with a key, an alias and a bucket only). One in
    each, outside any role, fails synth; the delivery roles' own policies pass, including
    one a role gets after the stack was built (an aspect on the role, not a walk)."""
    app = cdk.App(context={**cdk_json_context(), **NO_NODE_STACK_TRACES}, outdir=str(tmp_path))
    build_app(app, platform, default_releases(platform), AppOptions())
    delivery = app.node.find_child("Delivery")
    assert isinstance(delivery, DeliveryStack)
    supports = sorted(
        s.stack.node.path for s in delivery.pipeline.pipeline.cross_region_support.values()
    )
    assert len(supports) == 2
    queue = "arn:aws:sqs:us-east-1:111111111111:jobs"
    send = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue}
    for stack in (delivery, app.node.find_child(supports[0])):
        iam.CfnPolicy(
            stack,
            "Stray",
            policy_name="stray",
            policy_document={"Version": "2012-10-17", "Statement": [send]},
            roles=["stray"],
        )
    (approval,) = [
        role
        for role in delivery.node.find_all()
        if isinstance(role, iam.Role)
        and role.node.path.endswith("/Approve-prod/CodePipelineActionRole")
    ]
    assert approval.node.try_find_child("DefaultPolicy") is None  # the library grants it nothing
    approval.add_to_principal_policy(
        iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[queue])
    )
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert _violations(tmp_path) == [(INLINE, "Delivery/Stray"), (INLINE, f"{supports[0]}/Stray")]
