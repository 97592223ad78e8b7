"""Deploy rehearsal: every rule passes on every stack of the default app, and each rule fails
on a small fixture (most of them the real template with the fix of an issue #11 finding
taken out), so none of them can pass by construction."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import edited_assembly

from mlops.rehearsal.assembly import Assembly, load_assembly
from mlops.rehearsal.limits import LIMITS, Limit, violations
from mlops.rehearsal.policy import Request, allows
from mlops.rehearsal.rules import (
    RULES,
    codebuild_runtime_and_pins,
    custom_resources_time_out,
    documented_limits,
    job_io_permissions,
    principals_exist_first,
    rollback_alarms_describable,
    summary,
)


@pytest.fixture(scope="session")
def rehearsal(assembly_dir: Path) -> Assembly:
    return load_assembly(assembly_dir)


def _statements(template: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(policy document, statement) of every AWS::IAM::Policy in a template."""
    return [
        (r["Properties"]["PolicyDocument"], s)
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _drop_statement(sid: str) -> Callable[[dict[str, Any]], None]:
    def edit(template: dict[str, Any]) -> None:
        found = [(doc, s) for doc, s in _statements(template) if s.get("Sid") == sid]
        assert found, sid
        for doc, statement in found:
            doc["Statement"].remove(statement)

    return edit


# --- the whole app ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_passes_on_every_stack(rehearsal: Assembly, rule: Any) -> None:
    findings = rule.check(rehearsal)
    assert findings == [], summary(findings)


def test_rules_run_on_every_stage_and_region(rehearsal: Assembly) -> None:
    stages = {s.path.split("/")[0] for s in rehearsal.stacks if "/" in s.path}
    assert len(stages) == 6
    assert len({(s.account, s.region) for s in rehearsal.stacks}) >= 8
    # Every stage's stacks are there (Training only at the hub, Monitoring where it serves on
    # instances), plus Delivery and its cross-region support stacks.
    kinds = {s.path.split("/")[-1] for s in rehearsal.stacks if "/" in s.path}
    assert kinds == {"Data", "Training", "Serving", "Monitoring"}
    assert "Delivery" in {s.name for s in rehearsal.stacks}
    assert all(rule.source and rule.catches for rule in RULES)


def test_every_job_is_found(rehearsal: Assembly) -> None:
    from mlops.rehearsal.jobs import all_jobs

    jobs = [job.where for stack in rehearsal.stacks for job in all_jobs(stack)]
    pipeline_steps = [j for j in jobs if j.startswith("pipeline")]
    assert [j.rsplit(" ", 1)[-1] for j in pipeline_steps] == [
        "ValidateData",
        "Preprocess",
        "Train",
        "Evaluate",
    ]
    assert len([j for j in jobs if j.startswith("schedule")]) == 5  # drift, per monitored stage


# --- each rule can fail ----------------------------------------------------------------------


REPLICATION_ROLE = "arn:aws:iam::222222222222:role/flightdelay-dev-model-replication"


def _name_role_as_principal(sid: str, arn: str) -> Callable[[dict[str, Any]], None]:
    """Write a statement's grantee as the role itself, as a policy may (the app's policies
    name an account and the role in an aws:PrincipalArn condition, which needs no order)."""

    def edit(template: dict[str, Any]) -> None:
        found = [
            s
            for r in template["Resources"].values()
            for prop in ("KeyPolicy", "PolicyDocument")
            for s in (r.get("Properties", {}).get(prop) or {}).get("Statement", [])
            if isinstance(s, dict) and s.get("Sid") == sid
        ]
        assert found, sid
        for statement in found:
            statement["Principal"] = {"AWS": arn}
            statement.pop("Condition", None)

    return edit


def test_principal_named_before_its_role_exists_is_found(rehearsal: Assembly) -> None:
    """Finding #1: a hub key policy naming the replication role; without the dependency
    CloudFormation may create the key first and KMS rejects the unknown principal."""
    hub = "dev-us-east-1-Data"
    key = "DataKey2A0DE9E6"

    def name_role_without_dependency(template: dict[str, Any]) -> None:
        _name_role_as_principal("HubEncryptsReplicas", REPLICATION_ROLE)(template)
        template["Resources"][key].pop("DependsOn", None)

    assert principals_exist_first(rehearsal) == []
    named = edited_assembly(
        rehearsal, hub, _name_role_as_principal("HubEncryptsReplicas", REPLICATION_ROLE)
    )
    assert principals_exist_first(named) == []  # the key still waits for the role
    (finding,) = principals_exist_first(
        edited_assembly(rehearsal, hub, name_role_without_dependency)
    )
    assert finding.resource == key
    assert "ModelReplicationRole" in finding.message


def test_principal_of_a_later_wave_is_found(rehearsal: Assembly) -> None:
    """A spoke naming the hub's role is fine only because the hub's wave deploys first."""
    reordered = rehearsal
    for spoke in ("staging-us-east-1-Data", "prod-eu-west-1-Data"):
        reordered = edited_assembly(
            reordered, spoke, _name_role_as_principal("HubReplicatesModels", REPLICATION_ROLE)
        )
    assert principals_exist_first(reordered) == []
    reordered.deploy_order["dev-us-east-1-Data"] = (99, 1)
    findings = principals_exist_first(reordered)
    assert findings and {f.stack.split("-")[0] for f in findings} >= {"staging", "prod"}


def test_s3_prefix_input_without_list_bucket_is_found(rehearsal: Assembly) -> None:
    """Finding #2: the step-script input is S3Prefix, so SageMaker lists before reading."""
    findings = job_io_permissions(
        edited_assembly(rehearsal, "dev-us-east-1-Training", _drop_statement("ListStepScripts"))
    )
    steps = {f.resource.rsplit(" ", 1)[-1] for f in findings}
    # Train too: network-isolated, it gets the archive through its S3Prefix `code` channel.
    assert steps == {"ValidateData", "Preprocess", "Train", "Evaluate"}
    assert all("s3:ListBucket" in f.message and "s3:prefix" in f.message for f in findings)


def test_unwritable_output_and_unusable_key_are_found(rehearsal: Assembly) -> None:
    def narrow_drift_role(template: dict[str, Any]) -> None:
        for _, statement in _statements(template):
            if statement.get("Sid") == "WriteReports":
                statement["Action"] = "s3:GetObject"
            if statement.get("Action") == [
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
            ]:
                statement["Action"] = ["kms:Decrypt"]

    findings = job_io_permissions(
        edited_assembly(rehearsal, "prod-us-east-1-Monitoring", narrow_drift_role)
    )
    messages = " ".join(f.message for f in findings)
    assert "s3:PutObject" in messages
    assert "kms:GenerateDataKey" in messages


def test_key_policy_that_trusts_neither_role_nor_account_is_found(rehearsal: Assembly) -> None:
    def distrust_account(template: dict[str, Any]) -> None:
        statements = template["Resources"]["DataKey2A0DE9E6"]["Properties"]["KeyPolicy"][
            "Statement"
        ]
        for statement in statements:
            statement["Principal"] = {"AWS": "arn:aws:iam::999999999999:root"}

    findings = job_io_permissions(
        edited_assembly(rehearsal, "dev-us-east-1-Data", distrust_account)
    )
    assert findings and all("key policy" in f.message for f in findings)


def test_rollback_alarms_the_role_cannot_describe_are_found(rehearsal: Assembly) -> None:
    """Finding #3."""
    findings = rollback_alarms_describable(
        edited_assembly(
            rehearsal, "prod-us-east-1-Serving", _drop_statement("DescribeRollbackAlarms")
        )
    )
    assert len(findings) == 4  # 5xx rate and latency, on 1-minute and on 10-second metrics
    assert all("cloudwatch:DescribeAlarms" in f.message for f in findings)


def test_a_value_outside_a_documented_limit_is_found(rehearsal: Assembly) -> None:
    """Finding #5: a linear step below 10% of the fleet."""

    def small_steps(template: dict[str, Any]) -> None:
        (endpoint,) = [
            r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Endpoint"
        ]
        policy = endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
        policy["TrafficRoutingConfiguration"] = {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": 300,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 5},
        }
        policy["MaximumExecutionTimeoutInSeconds"] = 30000

    findings = documented_limits(
        edited_assembly(rehearsal, "staging-us-east-1-Serving", small_steps)
    )
    assert sorted(f.message.split("=")[0] for f in findings) == [
        "DeploymentConfig.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds",
        "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.LinearStepSize.Value",
    ]


@pytest.mark.parametrize(
    ("limit", "good", "bad"),
    [
        (Limit("T", "A.B", 10, 50), {"A": {"B": 10}}, {"A": {"B": 9}}),
        (Limit("T", "A.B", 10, 50), {"A": {"B": 50}}, {"A": {"B": 51}}),
        (
            Limit("T", "L[].N", pattern=r"^[a-z]{1,3}$"),
            {"L": [{"N": "abc"}]},
            {"L": [{"N": "abcd"}]},
        ),
        (Limit("T", "L#", 1, 2), {"L": [1, 2]}, {"L": [1, 2, 3]}),
        (
            Limit("T", "S.V", 1, 50, when=("Type", "P")),
            {"S": {"Type": "I", "V": 90}},
            {"S": {"Type": "P", "V": 90}},
        ),
    ],
)
def test_limit_rows_check_both_sides_of_the_edge(
    limit: Limit, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    assert violations(limit, good) == []
    assert len(violations(limit, bad)) == 1


def test_sagemaker_names_are_bounded_at_63_characters_hyphens_included() -> None:
    """The documented pattern does not count hyphens; the row must still stop at 63."""
    (row,) = [r for r in LIMITS if r.path == "EndpointName"]
    at_limit = "a" + "-b" * 31  # 63 characters, 32 of them alphanumeric
    assert len(at_limit) == 63 and violations(row, {"EndpointName": at_limit}) == []
    assert len(violations(row, {"EndpointName": at_limit + "c"})) == 1
    assert len(violations(row, {"EndpointName": "a" + "-b" * 40})) == 1


def test_every_limit_row_names_its_documentation() -> None:
    assert all(row.source.startswith("https://docs.aws.amazon.com/") for row in LIMITS)


def test_custom_resource_without_service_timeout_is_found(rehearsal: Assembly) -> None:
    """Finding #7: Custom::ModelArtifact held the stack for CloudFormation's hour."""

    def drop_timeouts(template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] == "Custom::ModelArtifact":
                resource["Properties"].pop("ServiceTimeout")

    findings = custom_resources_time_out(
        edited_assembly(rehearsal, "prod-us-east-1-Serving", drop_timeouts)
    )
    assert len(findings) == 2  # current and previous release


# --- the IAM evaluator the rules stand on -----------------------------------------------------

LIST_EXACT_KEY = {
    "Effect": "Allow",
    "Action": "s3:ListBucket",
    "Resource": "arn:aws:s3:::b",
    "Condition": {"StringEquals": {"s3:prefix": "code/x.gz"}},
}


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "code/x.gz"}), True),
        (Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "code/"}), False),
        (Request("s3:ListBucket", "arn:aws:s3:::b"), False),  # the key is absent: unmet
        (Request("s3:ListBucket", "arn:aws:s3:::other", {"s3:prefix": "code/x.gz"}), False),
        (Request("S3:LISTBUCKET", "arn:aws:s3:::b", {"s3:prefix": "code/x.gz"}), True),
    ],
)
def test_conditions_and_resources_decide(request_: Request, allowed: bool) -> None:
    assert allows([LIST_EXACT_KEY], request_) is allowed


def test_wildcards_ifexists_and_explicit_deny() -> None:
    allow = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/raw/*"}
    assert allows([allow], Request("s3:GetObject", "arn:aws:s3:::b/raw/x.csv"))
    assert not allows([allow], Request("s3:GetObject", "arn:aws:s3:::b/other/x.csv"))
    deny = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert allows(
        [allow, deny],
        Request("s3:GetObject", "arn:aws:s3:::b/raw/x", {"aws:SecureTransport": "true"}),
    )
    assert not allows(
        [allow, deny],
        Request("s3:GetObject", "arn:aws:s3:::b/raw/x", {"aws:SecureTransport": "false"}),
    )
    if_exists = {
        **allow,
        "Condition": {"StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
    }
    assert allows([if_exists], Request("s3:GetObject", "arn:aws:s3:::b/raw/x"))
    assert not allows(
        [if_exists], Request("s3:GetObject", "arn:aws:s3:::b/raw/x", {"kms:ViaService": "x"})
    )


def test_intrinsics_resolve_the_same_across_stacks(rehearsal: Assembly) -> None:
    data = rehearsal.by_name("prod-us-east-1-Data")
    serving = rehearsal.by_name("prod-us-east-1-Serving")
    key_arn = data.arn_of("DataKey2A0DE9E6")
    assert key_arn == "arn:aws:kms:us-east-1:444444444444:key/prod-us-east-1-Data-DataKey2A0DE9E6"
    (config,) = [
        r
        for r in serving.resources.values()
        if r["Type"] == "AWS::SageMaker::EndpointConfig" and "Current" in json.dumps(r["Metadata"])
    ]
    assert serving.resolve(config["Properties"]["KmsKeyId"]) == key_arn


def test_unpinned_tools_and_default_node_are_found(rehearsal: Assembly) -> None:
    """Finding #6: the library's defaults (image Node 18, aws-cdk@2, cdk-assets@latest)."""

    def library_defaults(template: dict[str, Any]) -> None:
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::CodeBuild::Project":
                continue
            source = resource["Properties"]["Source"]
            source["BuildSpec"] = (
                source["BuildSpec"]
                .replace('"nodejs": "22"', '"nodejs": "18"')
                .replace("aws-cdk@2.1148.1", "aws-cdk@2")
                .replace("cdk-assets@4.7.3", "cdk-assets@latest")
            )

    findings = codebuild_runtime_and_pins(edited_assembly(rehearsal, "Delivery", library_defaults))
    messages = [f.message for f in findings]
    projects = [
        r
        for r in rehearsal.by_name("Delivery").template["Resources"].values()
        if r["Type"] == "AWS::CodeBuild::Project"
    ]
    assert sum("Node 18" in m for m in messages) == len(projects)  # every project
    assert sum("aws-cdk@2;" in m for m in messages) == 1  # self-mutation
    asset_projects = [
        p for p in projects if "cdk-assets@" in p["Properties"]["Source"]["BuildSpec"]
    ]
    assert len(asset_projects) >= 5
    assert sum("cdk-assets@latest" in m for m in messages) == len(asset_projects)
