"""Every synthesized serving stage: each model reads a content-addressed copy that only the
stage's model stager can write or delete (the bucket policy's explicit Deny), and the reason
it is not an object version: CloudFormation's model cannot name one (README, Security)."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import botocore.session
from aws_cdk import aws_sagemaker as sagemaker
from bucket_policy import bucket_policy, bucket_policy_effect, listed

from mlops.rehearsal.assembly import Assembly, Stack, load_assembly

# Every action that creates, replaces or removes an object version (CopyObject and multipart
# uploads are authorized as s3:PutObject): the Deny must cover each.
VERSION_WRITES = {
    "s3:PutObject",
    "s3:ReplicateObject",
    "s3:RestoreObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
}


# --- the served copy, over every synthesized serving stage -----------------------------------


def staged_copy_problems(serving: Stack, data: Stack) -> list[str]:
    """Every model reads a content-addressed copy that only the stage's stager can change."""
    found = []
    artifacts = [
        serving.resolve(r["Properties"]) for _, r in serving.of_type("Custom::ModelArtifact")
    ]
    stager_function = next(
        f for k, f in serving.of_type("AWS::Lambda::Function") if k.startswith("ModelStagingStager")
    )
    stager_arn = serving.arn_of(stager_function["Properties"]["Role"]["Fn::GetAtt"][0])
    buckets = set()
    for logical_id, model in serving.of_type("AWS::SageMaker::Model"):
        container = model["Properties"]["PrimaryContainer"]
        url = serving.resolve(container.get("ModelDataUrl", ""))
        digest = next(
            (t["Value"] for t in model["Properties"]["Tags"] if t["Key"] == "model-sha256"), ""
        )
        served = [
            a
            for a in artifacts
            if a["Sha256"] == digest
            and a["StagedKey"] == f"models/sha256/{digest}/model.tar.gz"
            and url == f"s3://{a['DestinationBucket']}/{a['StagedKey']}"
        ]
        if not served or "ModelDataSource" in container:
            found.append(f"{logical_id} reads {url}, not the staged copy of its sha256")
        buckets |= {a["DestinationBucket"] for a in served}
    for bucket in sorted(buckets):
        statements = bucket_policy(data, bucket)
        served_copy = f"arn:aws:s3:::{bucket}/models/sha256/{'0' * 64}/model.tar.gz"
        for action in sorted(VERSION_WRITES):
            for principal in (
                stager_arn.replace("model-stager", "other"),
                f"arn:aws:iam::{data.account}:root",
            ):
                if bucket_policy_effect(statements, action, served_copy, principal) != "Deny":
                    found.append(f"{bucket}: {action} by {principal} is not denied")
            if bucket_policy_effect(statements, action, served_copy, stager_arn) != "Neutral":
                found.append(f"{bucket}: the policy denies or grants {action} to the stager")
        denies = [
            s
            for s in statements
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("ArnNotEquals")
        ]
        exempt = {
            a for s in denies for a in listed(s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
        }
        if exempt != {stager_arn}:
            found.append(f"{bucket}: the Deny exempts {sorted(exempt)}, not exactly the stager")
    return found


def _serving_stages(assembly: Assembly) -> list[tuple[Stack, Stack]]:
    return [
        (stack, assembly.by_name(stack.name.replace("-Serving", "-Data")))
        for stack in assembly.stacks
        if stack.name.endswith("-Serving") and any(stack.of_type("Custom::ModelArtifact"))
    ]


def test_every_served_model_reads_a_copy_only_its_stager_can_change(assembly_dir: Path) -> None:
    stages = _serving_stages(load_assembly(assembly_dir))
    assert len(stages) == 6  # dev, staging x2, prod x3
    assert {(s.name, p) for s, d in stages for p in staged_copy_problems(s, d)} == set()


def _edited(stack: Stack, edit: Callable[[dict[str, Any]], None]) -> Stack:
    template = copy.deepcopy(stack.template)
    edit(template)
    return replace(stack, template=template)


def test_the_served_copy_check_finds_each_mistake(assembly_dir: Path) -> None:
    serving, data = _serving_stages(load_assembly(assembly_dir))[0]

    def deny(template: dict[str, Any]) -> dict[str, Any]:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::S3::BucketPolicy":
                for s in resource["Properties"]["PolicyDocument"]["Statement"]:
                    if s.get("Sid") == "OnlyTheStagerWritesServedModels":
                        return s
        raise AssertionError("no Deny")

    def drop_delete(template: dict[str, Any]) -> None:
        deny(template)["Action"].remove("s3:DeleteObjectVersion")

    def exempt_everyone(template: dict[str, Any]) -> None:
        deny(template)["Condition"] = {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}

    def read_the_replica(template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::SageMaker::Model":
                resource["Properties"]["PrimaryContainer"]["ModelDataUrl"] = (
                    "s3://elsewhere/model.tar.gz"
                )

    assert staged_copy_problems(serving, data) == []
    assert any(
        "s3:DeleteObjectVersion by" in p
        for p in staged_copy_problems(serving, _edited(data, drop_delete))
    )
    assert any(
        "is not denied" in p for p in staged_copy_problems(serving, _edited(data, exempt_everyone))
    )
    assert all(
        "not the staged copy" in p
        for p in staged_copy_problems(_edited(serving, read_the_replica), data)
    )


def test_cloudformation_cannot_pin_the_served_object_version() -> None:
    """The limit README's security section explains: SageMaker's CreateModel takes an ETag
    for the model data (S3ModelDataSource.ETag), CloudFormation's AWS::SageMaker::Model (and
    so CDK's CfnModel) takes neither an ETag nor a version. When this fails, CDK can pin it:
    pin the staged copy's ETag in RealtimeEndpoint and drop the limit from the README."""
    api = botocore.session.get_session().get_service_model("sagemaker")
    assert "ETag" in api.shape_for("S3ModelDataSource").members
    for cfn_type in (
        sagemaker.CfnModel.S3DataSourceProperty,
        sagemaker.CfnModel.ContainerDefinitionProperty,
    ):
        parameters = set(inspect.signature(cfn_type).parameters)
        assert not {p for p in parameters if "tag" in p or "version" in p}, cfn_type
