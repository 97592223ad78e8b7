"""Every statement that lets another account in names its principal and carries a condition.

"Another account": a resource policy (bucket, key, trust, model package group, topic...)
whose Allow statement has an AWS principal outside the stack's own account. Naming the
principal: a role ARN, or an account root narrowed by an aws:PrincipalArn condition (a
policy naming a role that does not exist yet fails to deploy, so later waves' roles are
named in the condition).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

POLICY_PROPERTIES = (
    "PolicyDocument",
    "KeyPolicy",
    "AssumeRolePolicyDocument",
    "ModelPackageGroupPolicy",
)
_ACCOUNT = re.compile(r"^arn:[^:]+:iam::(\d{12}):(root|role/.+)$")
# The one kind of grant left without a condition: CDK Pipelines lets the target accounts'
# bootstrap deploy roles (named) read its artifact buckets; no S3 condition key narrows a
# read of the pipeline's own artifacts further. Their keys are conditioned (kms:ViaService).
UNCONDITIONED_LIBRARY_GRANT = (
    re.compile(
        r"^(Delivery/PipelineArtifactsBucketPolicy|cross-region-stack-[^/]+/"
        r"CrossRegionCodePipelineReplicationBucketPolicy)"
    ),
    frozenset({"s3:GetBucket*", "s3:GetObject*", "s3:List*"}),
    re.compile(r"^arn:aws:iam::\d{12}:role/cdk-hnb659fds-deploy-role-\d{12}-[a-z0-9-]+$"),
)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_arns(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal", {})
    if principal == "*":
        return ["*"]
    arns = []
    for value in _listed(principal.get("AWS", [])):
        if isinstance(value, dict) and "Fn::Join" in value:  # arn:<partition>:iam::<acct>:...
            value = "".join(p if isinstance(p, str) else "aws" for p in value["Fn::Join"][1])
        arns.append(value if isinstance(value, str) else str(value))
    return arns


def cross_account_statements(
    templates: dict[str, dict[str, Any]], accounts: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) of every Allow statement granting an AWS principal outside the stack's
    account; accounts maps a template path to its account."""
    found = []
    for path, template in templates.items():
        own = accounts[path]
        for logical_id, resource in template.get("Resources", {}).items():
            for name in POLICY_PROPERTIES:
                document = resource.get("Properties", {}).get(name)
                if not isinstance(document, dict):
                    continue
                for statement in _listed(document.get("Statement", [])):
                    if statement.get("Effect") != "Allow":
                        continue
                    arns = _principal_arns(statement)
                    match = [_ACCOUNT.match(a) for a in arns]
                    if "*" in arns or any(m and m.group(1) != own for m in match):
                        found.append((f"{path}/{logical_id}.{name}", statement))
    return found


def problems(statement: dict[str, Any]) -> list[str]:
    """What is wrong with one cross-account statement ([] = names its principal, conditioned)."""
    found = []
    conditions = statement.get("Condition", {})
    if not conditions:
        found.append("no condition")
    arns = _principal_arns(statement)
    if "*" in arns:
        found.append("principal '*'")
    named_by_condition = any(
        "aws:PrincipalArn" in block
        and all(":role/" in a for a in _listed(block["aws:PrincipalArn"]))
        for operator, block in conditions.items()
        if operator in ("ArnEquals", "StringEquals")
    )
    if any(a.endswith(":root") for a in arns) and not named_by_condition:
        found.append("an account root without an aws:PrincipalArn condition naming roles")
    return found


@pytest.fixture(scope="module")
def accounts(templates: dict[str, dict[str, Any]], platform: Any) -> dict[str, str]:
    by_stage = {
        f"{env.name}-{region}": env.account
        for env in platform.environments.values()
        for region in env.regions
    }
    return {path: by_stage.get(path.split("/")[0], platform.tooling.account) for path in templates}


def test_every_cross_account_statement_names_its_principal_and_is_conditioned(
    templates: dict[str, dict[str, Any]], accounts: dict[str, str]
) -> None:
    statements = cross_account_statements(templates, accounts)
    kinds = {s.get("Sid") for _, s in statements}
    # The grants the design needs, each found (so the walk sees all policy kinds).
    assert {
        "HubReplicatesModels",
        "HubEncryptsReplicas",
        "ModelStagersReadArtifacts",
        "ModelStagersDecryptThroughS3",
        "RollbackRolesRejectModels",
    } <= kinds
    assert any("SmokeTest" in where for where, _ in statements)
    found = {where: problems(s) for where, s in statements if problems(s)}
    where_ok, actions_ok, principal_ok = UNCONDITIONED_LIBRARY_GRANT
    library = {
        where
        for where, s in statements
        if where_ok.match(where)
        and set(_listed(s["Action"])) <= actions_ok
        and all(principal_ok.match(a) for a in _principal_arns(s))
        and found.get(where) == ["no condition"]
    }
    assert len(library) == 3  # home and two cross-region artifact buckets
    assert {w: p for w, p in found.items() if w not in library} == {}


def test_the_check_finds_each_kind_of_mistake() -> None:
    root = {"AWS": "arn:aws:iam::333333333333:root"}
    role = "arn:aws:iam::333333333333:role/flightdelay-staging-rollback-us-east-1"
    assert problems({"Effect": "Allow", "Principal": root}) == [
        "no condition",
        "an account root without an aws:PrincipalArn condition naming roles",
    ]
    assert problems(
        {
            "Effect": "Allow",
            "Principal": root,
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    ) == ["an account root without an aws:PrincipalArn condition naming roles"]
    assert problems(
        {
            "Effect": "Allow",
            "Principal": root,
            "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::333333333333:*"}},
        }
    ) == ["an account root without an aws:PrincipalArn condition naming roles"]
    assert problems({"Effect": "Allow", "Principal": "*", "Condition": {"Bool": {"x": "y"}}}) == [
        "principal '*'"
    ]
    assert (
        problems(
            {
                "Effect": "Allow",
                "Principal": root,
                "Condition": {"ArnEquals": {"aws:PrincipalArn": role}},
            }
        )
        == []
    )
    template = {
        "Resources": {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Statement": [
                            {"Effect": "Allow", "Principal": root, "Action": "kms:Decrypt"},
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                                "Action": "kms:*",
                            },
                        ]
                    }
                },
            }
        }
    }
    found = cross_account_statements({"s": template}, {"s": "222222222222"})
    assert [s["Principal"] for _, s in found] == [root]  # its own account is not cross-account
