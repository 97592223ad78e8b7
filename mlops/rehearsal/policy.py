"""A small IAM evaluator over resolved policy documents: enough to ask "may this role do
this action on this resource in this request context?" the way IAM answers it for identity
policies (explicit Deny wins; otherwise some Allow must match action, resource and every
condition). Conditions on keys the caller does not supply are treated as unmet: a check
that cannot tell stays red rather than passing by accident."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.rehearsal.assembly import Assembly, Stack


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    # IAM wildcards: * and ? only; fnmatch's [...] classes must not apply.
    escaped = pattern.replace("[", "[[]")
    if not case_sensitive:
        return fnmatch.fnmatchcase(value.lower(), escaped.lower())
    return fnmatch.fnmatchcase(value, escaped)


_OPERATORS = {
    "StringEquals": lambda want, got: want == got,
    "StringLike": lambda want, got: _glob(want, got),
    "ArnEquals": lambda want, got: want == got,
    "ArnLike": lambda want, got: _glob(want, got),
    "Bool": lambda want, got: str(want).lower() == str(got).lower(),
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == got.lower(),
}


def _condition_met(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    quantifier, _, base = base.rpartition(":")
    if key not in context:
        return if_exists
    got_values = [str(v) for v in _listed(context[key])]
    negated = base.startswith(("StringNot", "ArnNot"))
    base = base.replace("StringNot", "String").replace("ArnNot", "Arn")
    compare = _OPERATORS.get(base)
    if compare is None:
        return False  # an operator we do not model: unmet
    wanted_values = [str(v) for v in _listed(wanted)]

    def matches(got: str) -> bool:
        return any(compare(w, got) for w in wanted_values)

    if quantifier == "ForAllValues":
        result = all(matches(g) for g in got_values)
    else:
        result = any(matches(g) for g in got_values)
    return not result if negated else result


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, Any] | None = None

    def __str__(self) -> str:
        ctx = f" with {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{ctx}"


def statement_matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(
            _glob(a, request.action, case_sensitive=False) for a in _listed(statement["Action"])
        ):
            return False
    elif any(
        _glob(a, request.action, case_sensitive=False) for a in _listed(statement["NotAction"])
    ):
        return False
    if "Resource" in statement:
        if not any(_glob(str(r), request.resource) for r in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(
        _glob(str(r), request.resource) for r in _listed(statement["NotResource"])
    ):
        return False
    context = request.context or {}
    return all(
        _condition_met(operator, key, wanted, context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, wanted in keys.items()
    )


def allows(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    statements = list(statements)
    if any(s.get("Effect") == "Deny" and statement_matches(s, request) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and statement_matches(s, request) for s in statements)


def role_logical_id(stack: Stack, role_arn: str) -> str | None:
    """The role of this stack that the (resolved) ARN names, if any."""
    for logical_id, _ in stack.of_type("AWS::IAM::Role"):
        if stack.arn_of(logical_id) == role_arn:
            return logical_id
    return None


def role_statements(stack: Stack, role: str) -> list[dict[str, Any]]:
    """Resolved identity-policy statements of a role: inline, attached AWS::IAM::Policy and
    customer-managed policies of the same stack. AWS-managed policies are not modelled."""
    resource = stack.resources[role]
    documents = [p["PolicyDocument"] for p in resource.get("Properties", {}).get("Policies", [])]
    for _, policy in [
        *stack.of_type("AWS::IAM::Policy"),
        *stack.of_type("AWS::IAM::ManagedPolicy"),
    ]:
        roles = policy["Properties"].get("Roles", [])
        if any(isinstance(r, dict) and r.get("Ref") == role for r in roles):
            documents.append(policy["Properties"]["PolicyDocument"])
    return [
        statement
        for document in documents
        for statement in _listed(stack.resolve(document)["Statement"])
    ]


def principal_arns(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal", {})
    if principal == "*":
        return []
    return [str(p) for p in _listed(principal.get("AWS", []))]


def bucket_keys(assembly: Assembly) -> dict[str, tuple[Stack, str]]:
    """Bucket name -> (stack, logical id of its default KMS key), for our KMS buckets."""
    keys: dict[str, tuple[Stack, str]] = {}
    for stack in assembly.stacks:
        for logical_id, bucket in stack.of_type("AWS::S3::Bucket"):
            rules = (
                bucket.get("Properties", {})
                .get("BucketEncryption", {})
                .get("ServerSideEncryptionConfiguration", [])
            )
            for rule in rules:
                key = rule.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
                if isinstance(key, dict) and "Fn::GetAtt" in key:
                    keys[stack.resource_name(logical_id)] = (stack, key["Fn::GetAtt"][0])
    return keys


def key_policy_allows(key_stack: Stack, key_id: str, role_arn: str, request: Request) -> bool:
    """The key policy must allow the role itself, or the role's account (then IAM decides)."""
    account = role_arn.split(":")[4]
    policy = key_stack.resolve(key_stack.resources[key_id]["Properties"]["KeyPolicy"])
    trusting = [
        s
        for s in policy["Statement"]
        if {role_arn, f"arn:aws:iam::{account}:root", account} & set(principal_arns(s))
    ]
    return allows(trusting, request)
