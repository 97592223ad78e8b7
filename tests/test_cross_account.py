"""Every statement that lets another account in names its principal and carries a condition.

"Another account": a resource policy (bucket, key, trust, model package group, topic...)
whose Allow statement has an AWS principal outside the stack's own account, or one this
check cannot place in an account (counted as foreign: fail closed). Naming the principal
means exact roles, never a pattern:
- a role ARN without wildcards as the principal, or
- an account root (or bare account id) narrowed by an `aws:PrincipalArn` condition under
  ArnEquals or StringEquals whose values are all role ARNs without wildcards (a policy
  naming a role that does not exist yet fails to deploy, so later waves' roles are named in
  the condition). ArnEquals accepts `*` and `?` just like ArnLike, so `role/*` there is a
  wildcard too.
Known exceptions, each matched narrowly below: CDK Pipelines' grants to the target accounts'
bootstrap deploy roles (UNCONDITIONED_LIBRARY_GRANT).
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
# The account an AWS principal belongs to: an IAM/STS ARN, or a bare account id.
_ACCOUNT_OF = re.compile(r"^(?:arn:[^:]+:(?:iam|sts)::(\d{12}):.+|(\d{12}))$")
_WILDCARD = re.compile(r"[*?]")
_ROLE = re.compile(r"^arn:[^:]+:iam::\d{12}:role/\S+$")
_ROOT = re.compile(r"^(?:arn:[^:]+:iam::\d{12}:root|\d{12})$")
# The one kind of grant left without a condition: CDK Pipelines lets the target accounts'
# bootstrap deploy roles (named exactly) read its artifact buckets; no S3 condition key
# narrows a read of the pipeline's own artifacts further. Their keys are conditioned
# (kms:ViaService). Matched by where it is, what it allows and whom.
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


def _principal_arns(statement: dict[str, Any], own_account: str = "") -> list[str]:
    """The statement's AWS principals as strings. In an Fn::Join, AWS::Partition reads as
    "aws" and AWS::AccountId as the stack's own account; any other token stays visible as
    <token>, so the principal cannot be placed in an account (and counts as foreign)."""
    principal = statement.get("Principal", {})
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return [f"<{principal}>"]
    arns = []
    for value in _listed(principal.get("AWS", [])):
        if isinstance(value, dict) and "Fn::Join" in value:
            value = "".join(_part(p, own_account) for p in value["Fn::Join"][1])
        elif isinstance(value, dict) and "Fn::GetAtt" in value and own_account:
            value = f"arn:aws:iam::{own_account}:role/<{value['Fn::GetAtt'][0]}>"  # this stack's
        arns.append(value if isinstance(value, str) else f"<{value}>")
    return arns


def _part(part: Any, own_account: str) -> str:
    if isinstance(part, str):
        return part
    if part == {"Ref": "AWS::Partition"}:
        return "aws"
    if part == {"Ref": "AWS::AccountId"} and own_account:
        return own_account
    return f"<{part}>"


def _account(arn: str) -> str | None:
    match = _ACCOUNT_OF.match(arn)
    return (match.group(1) or match.group(2)) if match else None


def cross_account_statements(
    templates: dict[str, dict[str, Any]], accounts: dict[str, str]
) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) of every Allow statement granting an AWS principal outside the stack's
    account (or one not placed in any account); accounts maps a template path to its account."""
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
                    principal = statement.get("Principal", {})
                    if principal != "*" and "AWS" not in principal:
                        continue  # service or federated principals only
                    if any(_account(a) != own for a in _principal_arns(statement, own)):
                        found.append((f"{path}/{logical_id}.{name}", statement))
    return found


# Resource policies the walk above does not read: none may appear until it does (a
# cross-account grant there would otherwise pass unnoticed).
UNREAD_POLICIES = {
    "AWS::ECR::Repository": "RepositoryPolicyText",
    "AWS::Events::EventBusPolicy": "Statement",
    "AWS::SecretsManager::ResourcePolicy": "ResourcePolicy",
    "AWS::Logs::ResourcePolicy": "PolicyDocument",
    "AWS::ApiGateway::RestApi": "Policy",
    "AWS::Lambda::LayerVersionPermission": "Principal",
}


def unread_policies(templates: dict[str, dict[str, Any]]) -> list[str]:
    """Where a resource policy exists that cross_account_statements cannot judge: a policy
    document that is not a JSON object (e.g. an Fn::Join string), a policy kind it does not
    read, or a Lambda permission for anything but an AWS service."""
    found = []
    for path, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            where = f"{path}/{logical_id}"
            properties = resource.get("Properties", {})
            for name in POLICY_PROPERTIES:
                document = properties.get(name)
                if name in properties and not (
                    isinstance(document, dict) and "Statement" in document
                ):
                    found.append(f"{where}.{name}: not a JSON object the check can read")
            unread = UNREAD_POLICIES.get(resource.get("Type", ""))
            if unread and unread in properties:
                found.append(f"{where}.{unread}: a resource policy the check does not read")
            if resource.get("Type") == "AWS::Lambda::Permission":
                principal = properties.get("Principal")
                if not (isinstance(principal, str) and principal.endswith(".amazonaws.com")):
                    found.append(f"{where}.Principal: not an AWS service ({principal})")
    return found


def _names_exact_roles(values: Any) -> bool:
    values = _listed(values)
    return bool(values) and all(
        isinstance(v, str) and _ROLE.match(v) and not _WILDCARD.search(v) for v in values
    )


def problems(statement: dict[str, Any]) -> list[str]:
    """What is wrong with one cross-account statement ([] = names its principal, conditioned)."""
    found = []
    conditions = statement.get("Condition", {})
    if not conditions:
        found.append("no condition")
    named_by_condition = any(
        key.lower() == "aws:principalarn" and _names_exact_roles(values)
        for operator, block in conditions.items()
        if operator in ("ArnEquals", "StringEquals")
        for key, values in block.items()
    )
    for arn in _principal_arns(statement):
        if arn == "*":
            found.append("principal '*'")
        elif _WILDCARD.search(arn):
            found.append(f"a wildcard principal {arn}")
        elif _ROOT.match(arn):
            if not named_by_condition:
                found.append(
                    "an account root without an aws:PrincipalArn condition naming exact roles"
                )
        elif not _ROLE.match(arn):
            found.append(f"a principal that is neither a role nor an account root: {arn}")
    return list(dict.fromkeys(found))


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


ROOT = {"AWS": "arn:aws:iam::333333333333:root"}
ROLE = "arn:aws:iam::333333333333:role/flightdelay-staging-rollback-us-east-1"
NO_NAMED_ROLE = "an account root without an aws:PrincipalArn condition naming exact roles"
TLS = {"Bool": {"aws:SecureTransport": "true"}}


@pytest.mark.parametrize(
    ("principal", "condition", "expected"),
    [
        (ROOT, None, ["no condition", NO_NAMED_ROLE]),
        (ROOT, TLS, [NO_NAMED_ROLE]),
        # Named by the condition, but not as roles, or as a pattern (ArnEquals takes * too).
        (ROOT, {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::333333333333:*"}}, [NO_NAMED_ROLE]),
        (
            ROOT,
            {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::333333333333:role/*"}},
            [NO_NAMED_ROLE],
        ),
        (
            ROOT,
            {"ArnEquals": {"aws:PrincipalArn": [ROLE, "arn:aws:iam::333333333333:role/x-?"]}},
            [NO_NAMED_ROLE],
        ),
        (ROOT, {"ArnLike": {"aws:PrincipalArn": ROLE}}, [NO_NAMED_ROLE]),  # a pattern operator
        ({"AWS": "333333333333"}, TLS, [NO_NAMED_ROLE]),  # a bare account id is its root
        # The principal itself a pattern, a user, or anyone.
        (
            {"AWS": "arn:aws:iam::333333333333:role/*"},
            TLS,
            ["a wildcard principal arn:aws:iam::333333333333:role/*"],
        ),
        (
            {"AWS": "arn:aws:iam::333333333333:user/alice"},
            TLS,
            [
                "a principal that is neither a role nor an account root: "
                "arn:aws:iam::333333333333:user/alice"
            ],
        ),
        ("*", {"Bool": {"x": "y"}}, ["principal '*'"]),
        ({"AWS": ROLE}, None, ["no condition"]),
        # Named: an exact role, or the root narrowed to exact roles.
        ({"AWS": ROLE}, TLS, []),
        (ROOT, {"ArnEquals": {"aws:PrincipalArn": ROLE}}, []),
        ({"AWS": "333333333333"}, {"StringEquals": {"aws:PrincipalArn": [ROLE]}}, []),
    ],
)
def test_the_check_finds_each_kind_of_mistake(
    principal: Any, condition: dict[str, Any] | None, expected: list[str]
) -> None:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal}
    if condition is not None:
        statement["Condition"] = condition
    assert problems(statement) == expected


def test_the_walk_finds_every_foreign_principal_and_only_those() -> None:
    own = "222222222222"

    def key(*statements: dict[str, Any]) -> dict[str, Any]:
        return {
            "Type": "AWS::KMS::Key",
            "Properties": {"KeyPolicy": {"Statement": list(statements)}},
        }

    own_root = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
        ]
    }
    foreign: list[dict[str, Any]] = [
        {"Effect": "Allow", "Principal": ROOT, "Action": "kms:Decrypt"},
        {"Effect": "Allow", "Principal": {"AWS": "444444444444"}, "Action": "kms:Decrypt"},
        {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt"},
        # A token the walk cannot place in an account counts as foreign (fail closed).
        {"Effect": "Allow", "Principal": {"AWS": {"Ref": "SomeParameter"}}, "Action": "kms:*"},
    ]
    local: list[dict[str, Any]] = [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{own}:root"}, "Action": "kms:*"},
        {"Effect": "Allow", "Principal": {"AWS": own_root}, "Action": "kms:*"},
        {
            "Effect": "Allow",
            "Principal": {"AWS": {"Fn::GetAtt": ["Role", "Arn"]}},
            "Action": "kms:*",
        },
        {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "kms:*"},
        {"Effect": "Deny", "Principal": ROOT, "Action": "kms:*"},  # a Deny lets nobody in
    ]
    template = {"Resources": {"Key": key(*foreign, *local)}}
    found = cross_account_statements({"s": template}, {"s": own})
    assert [s for _, s in found] == foreign


def test_every_resource_policy_is_one_the_check_reads(
    templates: dict[str, dict[str, Any]],
) -> None:
    assert unread_policies(templates) == []


def test_a_policy_the_check_cannot_read_is_reported() -> None:
    joined_key = {
        "Type": "AWS::KMS::Key",
        "Properties": {"KeyPolicy": {"Fn::Join": ["", ['{"Statement": []}']]}},
    }
    repository = {
        "Type": "AWS::ECR::Repository",
        "Properties": {"RepositoryPolicyText": {"Statement": []}},
    }
    account_permission = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {"Action": "lambda:InvokeFunction", "Principal": "444444444444"},
    }
    service_permission = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com"},
    }
    read_key = {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": []}}}
    template = {
        "Resources": {
            "Joined": joined_key,
            "Repo": repository,
            "ToAccount": account_permission,
            "ToService": service_permission,
            "Read": read_key,
        }
    }
    assert unread_policies({"s": template}) == [
        "s/Joined.KeyPolicy: not a JSON object the check can read",
        "s/Repo.RepositoryPolicyText: a resource policy the check does not read",
        "s/ToAccount.Principal: not an AWS service (444444444444)",
    ]
