"""Security-relevant changes: IAM statements, security group rules, policy validation findings."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.review.model import (
    Finding,
    IamChange,
    SecurityGroupChange,
    as_list,
    props_of,
    render_value,
)

VALIDATION_REPORTS = ("validation-report.json", "policy-validation-report.json")


# ---------------------------------------------------------------- IAM


def policy_documents(resource: dict[str, Any]) -> dict[str, Any]:
    """The policy documents a resource carries, by a readable slot name."""
    rtype, props = resource.get("Type"), props_of(resource)
    docs: dict[str, Any] = {}
    if rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        docs["PolicyDocument"] = props.get("PolicyDocument")
    elif rtype == "AWS::IAM::Role":
        docs["trust policy"] = props.get("AssumeRolePolicyDocument")
        for i, policy in enumerate(props.get("Policies") or []):
            if isinstance(policy, dict):
                name = render_value(policy.get("PolicyName", i))
                docs[f"inline policy {name}"] = policy.get("PolicyDocument")
    elif rtype in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
        docs["PolicyDocument"] = props.get("PolicyDocument")
    elif rtype == "AWS::KMS::Key":
        docs["KeyPolicy"] = props.get("KeyPolicy")
    elif rtype == "AWS::SageMaker::ModelPackageGroup":
        docs["ModelPackageGroupPolicy"] = props.get("ModelPackageGroupPolicy")
    elif rtype == "AWS::ECR::Repository":
        docs["RepositoryPolicyText"] = props.get("RepositoryPolicyText")
    elif rtype == "AWS::Lambda::Permission":
        condition = {k: props[k] for k in ("SourceArn", "SourceAccount") if k in props}
        statement = {
            "Effect": "Allow",
            "Principal": props.get("Principal"),
            "Action": props.get("Action"),
            "Resource": props.get("FunctionName"),
        }
        if condition:
            statement["Condition"] = condition
        docs["invoke permission"] = {"Statement": [statement]}
    return {k: v for k, v in docs.items() if v is not None}


@dataclass(frozen=True)
class _Statement:
    effect: str
    principal: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: str


def _principal(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and not any(k.startswith("Fn::") or k == "Ref" for k in value):
        return "; ".join(f"{k}:{render_value(v)}" for k in sorted(value) for v in as_list(value[k]))
    return render_value(value)


def statements(document: Any) -> list[_Statement]:
    if isinstance(document, str):  # some resources take the policy as a JSON string
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, dict):
        return []
    out = []
    for st in as_list(document.get("Statement")):
        if not isinstance(st, dict):
            continue
        actions = [render_value(a) for a in as_list(st.get("Action"))]
        actions += [f"NOT {render_value(a)}" for a in as_list(st.get("NotAction"))]
        res = [render_value(r) for r in as_list(st.get("Resource"))]
        res += [f"NOT {render_value(r)}" for r in as_list(st.get("NotResource"))]
        principal = _principal(st.get("Principal"))
        if "NotPrincipal" in st:
            principal = "NOT " + _principal(st.get("NotPrincipal"))
        condition = st.get("Condition")
        out.append(
            _Statement(
                effect=str(st.get("Effect", "Allow")),
                principal=principal,
                actions=tuple(sorted(actions)),
                resources=tuple(sorted(res)) or ("(none)",),
                condition=render_value(condition) if condition else "",
            )
        )
    return out


def _wildcard_grants(sts: Iterable[_Statement]) -> set[tuple[str, str, str]]:
    """(field, token, other side) for every wildcard an Allow statement grants."""
    grants: set[tuple[str, str, str]] = set()
    for st in sts:
        if st.effect != "Allow":
            continue
        for action in st.actions:
            if action == "*" or action.endswith(":*") or action.startswith("NOT "):
                grants |= {("Action", action, r) for r in st.resources}
        for res in st.resources:
            if res == "*" or res.startswith("NOT "):
                grants |= {("Resource", res, a) for a in st.actions}
        if st.principal in ("AWS:*", "*") or st.principal.startswith("NOT "):
            grants |= {("Principal", st.principal, a) for a in st.actions}
    return grants


def _broadening(st: _Statement, base_grants: set[tuple[str, str, str]]) -> tuple[str, ...]:
    new = _wildcard_grants([st]) - base_grants
    reasons = sorted({f'new "{token}" in {fld}' for fld, token, _ in new})
    return tuple(reasons)


def diff_iam(
    key: str,
    base: dict[str, dict[str, Any]],
    head: dict[str, dict[str, Any]],
    renames: dict[str, str],
) -> list[IamChange]:
    old_of = {new: old for old, new in renames.items()}
    out: list[IamChange] = []
    for lid in sorted(set(base) | set(head)):
        if lid in renames:  # compared under its new id
            continue
        b_res = base.get(old_of.get(lid, lid)) or {}
        h_res = head.get(lid) or {}
        rtype = str((h_res or b_res).get("Type"))
        b_docs, h_docs = policy_documents(b_res), policy_documents(h_res)
        for slot in sorted(set(b_docs) | set(h_docs)):
            b_st, h_st = statements(b_docs.get(slot)), statements(h_docs.get(slot))
            base_grants = _wildcard_grants(b_st)
            gone = Counter(b_st) - Counter(h_st)
            new = Counter(h_st) - Counter(b_st)
            for sign, bag in (("+", new), ("-", gone)):
                for st in bag.elements():
                    out.append(
                        IamChange(
                            key,
                            lid,
                            rtype,
                            slot,
                            sign,
                            st.effect,
                            st.principal,
                            st.actions,
                            st.resources,
                            st.condition,
                            _broadening(st, base_grants) if sign == "+" else (),
                        )
                    )
        out.extend(_managed_policy_changes(key, lid, rtype, b_res, h_res))
    return out


def _managed_policy_changes(
    key: str, lid: str, rtype: str, base: dict[str, Any], head: dict[str, Any]
) -> list[IamChange]:
    if rtype != "AWS::IAM::Role":
        return []
    b = {render_value(a) for a in as_list(props_of(base).get("ManagedPolicyArns"))}
    h = {render_value(a) for a in as_list(props_of(head).get("ManagedPolicyArns"))}
    out = []
    for sign, arns in (("+", h - b), ("-", b - h)):
        for arn in sorted(arns):
            broad = ("broad managed policy",) if sign == "+" and _broad_managed(arn) else ()
            out.append(
                IamChange(
                    key,
                    lid,
                    rtype,
                    "managed policy",
                    sign,
                    "Attach",
                    "",
                    (arn,),
                    ("-",),
                    broadened=broad,
                )
            )
    return out


def _broad_managed(arn: str) -> bool:
    name = arn.rsplit("/", 1)[-1]
    return name in ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess") or name.endswith(
        "FullAccess"
    )


# ---------------------------------------------------------------- security groups


def _sg_rule(rule: dict[str, Any], direction: str) -> tuple[str, bool]:
    proto = render_value(rule.get("IpProtocol", "-1"))
    proto = "all traffic" if proto in ("-1", "all") else proto
    low, high = rule.get("FromPort"), rule.get("ToPort")
    ports = "" if low is None else f" port {low}" if low == high else f" ports {low}-{high}"
    peer_keys = (
        "CidrIp",
        "CidrIpv6",
        "SourceSecurityGroupId",
        "SourcePrefixListId",
        "DestinationSecurityGroupId",
        "DestinationPrefixListId",
    )
    peer = next((render_value(rule[k]) for k in peer_keys if k in rule), "?")
    text = f"{proto}{ports} {'from' if direction == 'ingress' else 'to'} {peer}"
    if rule.get("Description"):
        text += f" ({render_value(rule['Description'])})"
    return text, direction == "ingress" and peer in ("0.0.0.0/0", "::/0")


def _sg_rules(resources: dict[str, dict[str, Any]]) -> dict[tuple[str, str, str], bool]:
    rules: dict[tuple[str, str, str], bool] = {}
    for lid, r in resources.items():
        rtype, props = r.get("Type"), props_of(r)
        if rtype == "AWS::EC2::SecurityGroup":
            for direction, prop in (
                ("ingress", "SecurityGroupIngress"),
                ("egress", "SecurityGroupEgress"),
            ):
                for rule in as_list(props.get(prop)):
                    if isinstance(rule, dict):
                        text, wide = _sg_rule(rule, direction)
                        rules[(lid, direction, text)] = wide
        elif rtype in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            direction = "ingress" if rtype.endswith("Ingress") else "egress"
            group = render_value(props.get("GroupId", props.get("GroupName", lid)))
            group = group.removeprefix("${").split(".")[0].rstrip("}")
            text, wide = _sg_rule(props, direction)
            rules[(group, direction, text)] = wide
    return rules


def diff_security_groups(
    key: str, base: dict[str, dict[str, Any]], head: dict[str, dict[str, Any]]
) -> list[SecurityGroupChange]:
    b, h = _sg_rules(base), _sg_rules(head)
    out = []
    for sign, keys in (("+", h.keys() - b.keys()), ("-", b.keys() - h.keys())):
        for group, direction, text in sorted(keys):
            wide = h.get((group, direction, text), False) if sign == "+" else False
            out.append(SecurityGroupChange(key, group, direction, sign, text, wide))
    return out


# ---------------------------------------------------------------- policy validation (cdk-nag)


def load_findings(assembly_dir: Path) -> tuple[list[Finding], list[Finding]]:
    """(open violations, acknowledged violations) from the policy validation report."""
    for name in VALIDATION_REPORTS:
        path = assembly_dir / name
        if path.is_file():
            try:
                report = json.loads(path.read_text())
            except ValueError:
                continue
            return _parse_validation_report(report)
    return [], []


def _parse_validation_report(report: Any) -> tuple[list[Finding], list[Finding]]:
    open_, acked = [], []
    if not isinstance(report, dict):
        return [], []
    for plugin in as_list(report.get("pluginReports")):
        if not isinstance(plugin, dict):
            continue
        summary = plugin.get("summary")
        summary = summary if isinstance(summary, dict) else {}
        name = str(plugin.get("pluginName") or summary.get("pluginName") or "policy")
        for v in as_list(plugin.get("violations")):
            open_.extend(_findings(name, v))
        for v in as_list(plugin.get("suppressedViolations")):
            acked.extend(_findings(name, v))
    return open_, acked


def _findings(plugin: str, violation: Any) -> list[Finding]:
    if not isinstance(violation, dict):
        return []
    where = []
    for c in as_list(violation.get("violatingConstructs")) or as_list(
        violation.get("violatingResources")
    ):
        if not isinstance(c, dict):
            continue
        cfn = c.get("cloudFormationResource")
        cfn = cfn if isinstance(cfn, dict) else {}
        path = c.get("constructPath") or ""
        if not path:
            template = Path(str(cfn.get("templatePath") or c.get("templatePath") or "")).name
            logical = cfn.get("logicalId") or c.get("resourceLogicalId") or ""
            path = f"{template}:{logical}" if template or logical else "(app)"
        where.append(str(path))
    return [
        Finding(
            plugin,
            str(violation.get("ruleName", "?")),
            w,
            str(violation.get("description", "")),
            str(violation.get("severity", "")),
            str(violation.get("reason") or ""),
        )
        for w in (where or ["(app)"])
    ]


def new_findings(head: list[Finding], base: list[Finding]) -> list[Finding]:
    known = {f.key for f in base}
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in head:
        if f.key not in known and f.key not in seen:
            seen.add(f.key)
            out.append(f)
    return out
