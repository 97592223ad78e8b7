"""The delivery pipeline: order of waves, approval before prod, self-mutation, checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def delivery(templates: dict[str, Any]) -> dict[str, Any]:
    return templates["Delivery"]["Resources"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def stages(delivery: dict[str, Any]) -> list[dict[str, Any]]:
    (pipeline,) = [r for r in delivery.values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    assert pipeline["Properties"]["PipelineType"] == "V2"
    return pipeline["Properties"]["Stages"]  # type: ignore[no-any-return]


def _actions(stage: dict[str, Any], category: str) -> list[dict[str, Any]]:
    return [a for a in stage["Actions"] if a["ActionTypeId"]["Category"] == category]


def test_waves_deploy_dev_then_staging_then_prod_after_self_mutation(
    stages: list[dict[str, Any]],
) -> None:
    names = [stage["Name"] for stage in stages]
    assert names[:4] == ["Source", "Build", "UpdatePipeline", "Assets"]
    assert names[4:] == ["dev-us-east-1", "staging", "prod"]
    (source,) = stages[0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "example-org/mlops-platform"
    assert source["Configuration"]["BranchName"] == "main"


def test_every_prod_deployment_waits_for_a_manual_approval(stages: list[dict[str, Any]]) -> None:
    prod = next(s for s in stages if s["Name"] == "prod")
    (approval,) = _actions(prod, "Approval")
    deploys = _actions(prod, "Deploy")
    assert deploys
    assert all(a["RunOrder"] > approval["RunOrder"] for a in deploys)
    for earlier in (s for s in stages if s["Name"] != "prod"):
        assert not _actions(earlier, "Approval")


def test_regions_of_a_wave_deploy_in_parallel(stages: list[dict[str, Any]]) -> None:
    prod = next(s for s in stages if s["Name"] == "prod")
    data_deploys = [a for a in _actions(prod, "Deploy") if a["Name"].endswith("Data.Deploy")]
    assert {a["Name"].split(".")[0] for a in data_deploys} == {
        "prod-us-east-1",
        "prod-eu-west-1",
        "prod-ap-southeast-1",
    }
    assert len({a["RunOrder"] for a in data_deploys}) == 1


def test_every_deployed_endpoint_is_checked_after_its_deployment(
    stages: list[dict[str, Any]], delivery: dict[str, Any]
) -> None:
    for stage_name, regions in (("staging", 2), ("prod", 3)):
        stage = next(s for s in stages if s["Name"] == stage_name)
        checks = [a for a in _actions(stage, "Build") if ".Check-" in a["Name"]]
        assert len(checks) == regions
        last_deploy = max(a["RunOrder"] for a in _actions(stage, "Deploy"))
        assert all(a["RunOrder"] > last_deploy for a in checks)
    projects = [r for r in delivery.values() if r["Type"] == "AWS::CodeBuild::Project"]
    check_projects = [
        p
        for p in projects
        if "post-deploy-check.sh" in p["Properties"]["Source"].get("BuildSpec", "")
    ]
    assert len(check_projects) == 6  # every serving (environment, region)
    for project in check_projects:
        variables = {
            v["Name"]: v["Value"]
            for v in project["Properties"]["Environment"]["EnvironmentVariables"]
        }
        assert variables["ENDPOINT_NAME"].startswith("flightdelay-")
        assert variables["ROLE_ARN"].endswith("-smoke-test")
    prod = next(s for s in stages if s["Name"] == "prod")
    check = next(a for a in _actions(prod, "Build") if ".Check-" in a["Name"])
    assert "EXPECTED_CONFIG" in check["Configuration"]["EnvironmentVariables"]


def test_synth_commands_live_in_a_script(delivery: dict[str, Any]) -> None:
    specs = [
        r["Properties"]["Source"].get("BuildSpec", "")
        for r in delivery.values()
        if r["Type"] == "AWS::CodeBuild::Project"
    ]
    assert any("bash scripts/pipeline-synth.sh" in spec for spec in specs)
    script = (ROOT / "scripts" / "pipeline-synth.sh").read_text()
    assert "make test" in script and "make synth" in script


def test_self_mutation_project_exists(delivery: dict[str, Any]) -> None:
    specs = [
        r["Properties"]["Source"].get("BuildSpec", "")
        for r in delivery.values()
        if r["Type"] == "AWS::CodeBuild::Project"
    ]
    assert any("cdk -a . deploy" in spec and "Delivery" in spec for spec in specs)


def test_sample_request_matches_the_feature_order() -> None:
    from pipeline_steps import feature_schema

    rows = (ROOT / "samples" / "flight-request.csv").read_text().splitlines()
    assert rows
    assert all(len(row.split(",")) == len(feature_schema.FEATURE_ORDER) for row in rows)


def test_only_each_stages_named_check_role_may_assume_its_smoke_test_role(
    templates: dict[str, Any], delivery: dict[str, Any]
) -> None:
    checkers = {
        r["Properties"]["RoleName"]: r
        for r in delivery.values()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"].get("RoleName", "").endswith("-deploy-check")
    }
    assert len(checkers) == 6
    for path in ("prod-eu-west-1/Serving", "staging-us-east-1/Serving"):
        roles = [
            r
            for r in templates[path]["Resources"].values()
            if r["Type"] == "AWS::IAM::Role"
            and r["Properties"].get("RoleName", "").endswith("-smoke-test")
        ]
        ((trust,),) = [r["Properties"]["AssumeRolePolicyDocument"]["Statement"] for r in roles]
        assert trust["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
        env, region = path.split("/")[0].split("-", 1)
        name = f"flightdelay-{env}-{region}-deploy-check"
        assert trust["Condition"] == {
            "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::111111111111:role/{name}"}
        }
        assert name in checkers


def test_the_pipeline_uses_only_its_artifact_keys(
    templates: dict[str, Any], delivery: dict[str, Any]
) -> None:
    kms_statements = [
        s
        for r in delivery.values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if any(
            str(a).startswith("kms:")
            for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        )
    ]
    assert kms_statements
    for statement in kms_statements:
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        assert "*" not in resources
    bounded = [s for s in kms_statements if "Condition" in s]
    (pipeline_role,) = bounded
    assert sorted(r for r in pipeline_role["Resource"] if isinstance(r, str)) == [
        f"arn:aws:kms:{region}:111111111111:key/*" for region in ("ap-southeast-1", "eu-west-1")
    ]
    aliases = pipeline_role["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"]
    literal = [a for a in aliases if isinstance(a, str)]
    assert len(literal) == 2 and all(a.startswith("alias/") for a in literal)
    assert {
        "Ref": next(
            k for k in delivery if k.startswith("PipelineArtifactsBucketEncryptionKeyAlias")
        )
    } in aliases
    # The keys outlive nothing they encrypt: retained with the retained artifact buckets.
    stacks = [templates["Delivery"]] + [
        t for p, t in templates.items() if p.startswith("cross-region-stack")
    ]
    keys = [
        r
        for t in stacks
        for r in t["Resources"].values()
        if r["Type"] in ("AWS::KMS::Key", "AWS::KMS::Alias")
    ]
    assert len(keys) == 7  # 3 artifact keys with their aliases, and the build logs' key
    assert {k.get("DeletionPolicy") for k in keys} == {"Retain"}
    artifact_keys = [
        r
        for r in keys
        if r["Type"] == "AWS::KMS::Key"
        and "build logs" not in r["Properties"].get("Description", "")
    ]
    assert len(artifact_keys) == 3
    for key in artifact_keys:
        for statement in key["Properties"]["KeyPolicy"]["Statement"]:
            if statement["Principal"] != {"AWS": "arn:aws:iam::111111111111:root"}:
                assert list(statement["Condition"]["StringEquals"]) == ["kms:ViaService"]


def test_pipeline_grants_are_acknowledged_only_when_every_action_is_listed() -> None:
    from mlops.constructs.pipeline_nag import grant_of

    bucket = "<PipelineArtifactsBucketAEA9A052.Arn>/*"
    assert grant_of(["s3:GetObject*", "s3:List*"], [bucket]) is not None
    assert grant_of(["s3:GetObject*", "s3:PutBucketPolicy"], [bucket]) is None
    assert grant_of(["cloudformation:DescribeStacks", "s3:ListBucket"], ["*"]) is not None
    assert grant_of(["cloudformation:DescribeStacks", "iam:PassRole"], ["*"]) is None
    # The catch-all no longer covers KMS on every key.
    assert grant_of(["kms:Decrypt", "kms:Encrypt"], ["*"]) is None
    assert (
        grant_of(["kms:Decrypt"], ["<PipelineArtifactsBucketEncryptionKeyF5BF0670.Arn>"])
        is not None
    )
