"""The delivery pipeline (tooling account): a self-mutating CDK Pipelines CodePipeline (V2)
that deploys one wave per environment, regions in parallel, prod behind a manual approval,
with post-deploy checks of every endpoint it deployed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import pipelines
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.constructs.encryption_key import EncryptionKey
from mlops.constructs.pipeline_keys import (
    BoundPipelineKeyUse,
    KeysOnlyThroughS3,
    artifact_keys,
    retain_artifact_keys,
)
from mlops.constructs.pipeline_nag import AcknowledgePipelineGrants
from mlops.nag import NIST, AcknowledgeRoleScopedPolicies, acknowledge_each
from mlops.stacks.stage import PlatformStage

APPROVAL_REQUIRED = ("prod",)
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
# STANDARD_7_0 defaults to Node 18, which jsii no longer supports: select the runtimes
# explicitly (the image carries Node 18-22 and Python 3.9-3.12).
# https://docs.aws.amazon.com/codebuild/latest/userguide/runtime-versions.html
RUNTIME_VERSIONS = {"nodejs": "22", "python": "3.11"}
PACKAGE_JSON = Path(__file__).resolve().parents[2] / "package.json"


def pinned_npm_version(package: str) -> str:
    """The exact version package.json pins, so the pipeline runs the CLI `make synth` ran."""
    return str(json.loads(PACKAGE_JSON.read_text())["devDependencies"][package])


class DeliveryStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        waves: Sequence[tuple[EnvironmentConfig, Sequence[PlatformStage]]],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        tooling = platform.tooling
        # Every CodeBuild project of the pipeline (synth, self-mutation, assets, checks) logs
        # to one group with a customer key and a retention, instead of CodeBuild's defaults.
        build_key = EncryptionKey(
            self, "BuildLogsKey", description=f"{platform.project} delivery build logs", retain=True
        ).key
        self.build_logs = logs.LogGroup(
            self,
            "BuildLogs",
            log_group_name=f"/aws/codebuild/{platform.project}-delivery",
            encryption_key=build_key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        source = pipelines.CodePipelineSource.connection(
            tooling.repository, tooling.branch, connection_arn=tooling.connection_arn
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_type=codepipeline.PipelineType.V2,
            self_mutation=True,
            cross_account_keys=True,  # stages deploy into other accounts
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
                logging=codebuild.LoggingOptions(
                    cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.build_logs)
                ),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
                ),
            ),
            # Self-mutation and asset publishing `npm install -g` these: pin them, not @latest.
            cli_version=pinned_npm_version("aws-cdk"),
            cdk_assets_cli_version=pinned_npm_version("cdk-assets"),
            synth=pipelines.ShellStep(
                "Synth",
                input=source,
                commands=["bash scripts/pipeline-synth.sh"],
                primary_output_directory="cdk.out",
            ),
        )
        for environment, stages in waves:
            pre: list[pipelines.Step] = []
            if environment.name in APPROVAL_REQUIRED:
                pre.append(
                    pipelines.ManualApprovalStep(
                        f"Approve-{environment.name}",
                        comment=f"Deploy to {environment.name} in {', '.join(environment.regions)}?",
                    )
                )
            wave = self.pipeline.add_wave(environment.name, pre=pre)
            for stage in stages:
                wave.add_stage(stage, post=self._post_deploy_steps(self, stage, source))
        self.pipeline.build_pipeline()
        self._add_policy_aspects()
        retain_artifact_keys(self.pipeline)
        self._acknowledge_unlogged_artifact_buckets()

    def _add_policy_aspects(self) -> None:
        """Aspects, because the library adds statements until synthesis; each one on the only
        subtrees its targets live in, since every construct an Aspect visits is a callback
        from node into Python. Grant policies live under roles (a policy anywhere else,
        here or in a cross-region support stack, stays unacknowledged and fails synth). On
        the pipeline role's policy the grants acknowledgement and the bound are independent
        (the former never matches the KMS statement the latter rewrites), so their order
        does not matter."""
        role_scoped = AcknowledgeRoleScopedPolicies()
        grants = AcknowledgePipelineGrants()
        for role in self.node.find_all():
            if isinstance(role, iam.Role):
                cdk.Aspects.of(role).add(role_scoped)
                cdk.Aspects.of(role).add(grants)
        cdk.Aspects.of(self.pipeline.pipeline.role).add(BoundPipelineKeyUse(self.pipeline))
        keys_through_s3 = KeysOnlyThroughS3(self.pipeline)
        for key, _ in artifact_keys(self.pipeline):
            cdk.Aspects.of(key).add(keys_through_s3)

    def _acknowledge_unlogged_artifact_buckets(self) -> None:
        """The library's artifact buckets (and its cross-region replicas) have no access logs."""
        reason = (
            "CDK Pipelines' artifact bucket: transient build artifacts, KMS-encrypted, "
            "reachable only by the pipeline's roles; CloudTrail records its access."
        )
        buckets = [self.pipeline.pipeline.artifact_bucket] + [
            support.replication_bucket
            for support in self.pipeline.pipeline.cross_region_support.values()
        ]
        rules = ["AwsSolutions-S1"] + [
            f"{NIST}-{rule}"
            for rule in (
                "S3BucketLoggingEnabled",
                "S3BucketVersioningEnabled",
                "S3BucketReplicationEnabled",
                "S3DefaultEncryptionKMS",
            )
        ]
        for bucket in buckets:
            acknowledge_each(bucket, dict.fromkeys(rules, reason))

    @staticmethod
    def _post_deploy_steps(
        scope: Construct, stage: PlatformStage, source: pipelines.CodePipelineSource
    ) -> list[pipelines.Step]:
        serving = stage.serving
        if serving is None:
            return []
        role_arn = f"arn:aws:iam::{serving.account}:role/{serving.smoke_test.role.role_name}"
        # Named: the smoke-test role in the serving account trusts exactly this role.
        checker = iam.Role(
            scope,
            f"Check-{stage.stage_name}-Role",
            role_name=serving.smoke_test.checker_role_name,
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"Post-deploy check of {stage.stage_name}: assumes its smoke-test role.",
        )
        return [
            pipelines.CodeBuildStep(
                f"Check-{stage.stage_name}",
                input=source,
                commands=["bash scripts/post-deploy-check.sh"],
                env={
                    "ENDPOINT_NAME": serving.endpoint_name,
                    "REGION": serving.region,
                    "ROLE_ARN": role_arn,
                },
                env_from_cfn_outputs={"EXPECTED_CONFIG": serving.endpoint_config_output},
                role=checker,
                role_policy_statements=[
                    iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role_arn])
                ],
            )
        ]
