"""cdk-nag 3 wiring: the rule packs the app runs and the one way to acknowledge a finding."""

from __future__ import annotations

import json
import re
import sys
import weakref
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from constructs import IConstruct

NIST = "NIST.800.53.R5"


def add_rule_packs(app: cdk.App) -> None:
    """Register the checks (AWS Solutions, then NIST 800-53 rev5); synth fails with any
    unacknowledged finding. Nothing is acknowledged app-wide: each stage acknowledges its
    own policies, the delivery stack its roles' policies."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))


@jsii.implements(cdk.IAspect)
class AcknowledgeRoleScopedPolicies:
    """NIST IAMNoInlinePolicy, on each policy CDK renders from grants: every one is attached
    to exactly one role and named after it; a managed policy with the same statements would
    only be easier to attach somewhere else by mistake.

    Put it on a role (cdk.Aspects.of(role)) whose grants the library keeps adding until
    synthesis: every construct an Aspect visits is a callback from node into Python, and a
    policy outside the role is not its to acknowledge (it fails synth)."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, iam.CfnPolicy):
            _acknowledge_role_scoped_policy(node)


def acknowledge_role_scoped_policies(scope: IConstruct) -> None:
    """What AcknowledgeRoleScopedPolicies does, in one walk of a finished scope (one jsii
    call) instead of an Aspect's callback per construct. A policy added to the scope after
    the walk is not acknowledged: its finding fails synth, nothing is let through."""
    for node in scope.node.find_all():
        if isinstance(node, iam.CfnPolicy):
            _acknowledge_role_scoped_policy(node)


def _acknowledge_role_scoped_policy(policy: iam.CfnPolicy) -> None:
    acknowledge(
        policy,
        f"{NIST}-IAMNoInlinePolicy",
        "A CDK grant policy attached to exactly one role; a managed policy adds reuse risk, not scope.",
    )


# Our Lambdas call AWS APIs only; the platform has no VPC yet (README, design notes).
LAMBDA_WITHOUT_VPC = {
    f"{NIST}-{rule}": reason
    for rule, reason in {
        "LambdaInsideVPC": "Calls AWS APIs only, over TLS; the platform deploys no VPC yet.",
        "LambdaConcurrency": "Reserving concurrency fails in accounts with the default quota of 10; one rule or step invokes it at a time.",
        "LambdaDLQ": "Async invocations fail over to an SQS on-failure destination (FailureAlerts), which keeps request and response; synchronous callers get the error.",
    }.items()
}


def acknowledge_lambda_without_vpc(function: IConstruct) -> None:
    acknowledge_each(function, LAMBDA_WITHOUT_VPC)


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge ONE finding at the narrowest scope that has it, with a specific reason.

    IAM5 findings need the detailed id, e.g. "AwsSolutions-IAM5[Action::s3:Abort*]".
    """
    acknowledge_each(scope, {rule_id: reason})


# Validations.of(scope) holds nothing but the scope: one per construct instead of one jsii
# request per call (jsii returns the same Python object for the same construct).
_validations: weakref.WeakKeyDictionary[IConstruct, cdk.Validations] = weakref.WeakKeyDictionary()


def acknowledge_each(scope: IConstruct, reasons: dict[str, str]) -> None:
    """acknowledge() for each (rule id, reason) on the same scope, in order, in one jsii
    call instead of two per finding (CDK records each one as before)."""
    for rule_id, reason in reasons.items():
        if len(reason) < 20:
            raise ValueError(f"acknowledgment of {rule_id} needs a specific reason")
    validations = _validations.get(scope)
    if validations is None:
        validations = _validations[scope] = cdk.Validations.of(scope)
    validations.acknowledge(
        *(cdk.Acknowledgment(id=rule_id, reason=reason) for rule_id, reason in reasons.items())
    )


def render_for_finding(scope: IConstruct, value: str) -> str:
    """How cdk-nag prints a (possibly tokenized) IAM resource in a finding id.

    Literal strings stay as they are; {"Fn::GetAtt": [id, attr]} becomes <id.attr>,
    {"Ref": id} becomes <id>, and Fn::Join concatenates its parts.
    """
    if isinstance(value, str) and "${Token[" not in value:
        return value  # a literal: resolve() would return it unchanged
    return _render(cdk.Stack.of(scope).resolve(value))  # resolve() also takes resolved values


def _render(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding id")


def wildcard_resource_finding(scope: IConstruct, resource: str) -> str:
    """The AwsSolutions-IAM5 finding id of one wildcard resource ARN, built like the finding."""
    return f"AwsSolutions-IAM5[Resource::{render_for_finding(scope, resource)}]"


def acknowledge_wildcard_resource(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for one wildcard resource ARN."""
    acknowledge(scope, wildcard_resource_finding(scope, resource), reason)


KEY_GRANT_REASON = "CDK's standard encrypt/decrypt grant, on the stage's own key only."


def key_grant_findings(reason: str = KEY_GRANT_REASON) -> dict[str, str]:
    """The findings of the KMS grant CDK writes (GenerateDataKey*, ReEncrypt*), each with reason."""
    return {
        f"AwsSolutions-IAM5[Action::{action}]": reason
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
    }


def acknowledge_key_grant(scope: IConstruct) -> None:
    """The KMS grant CDK writes on the stage's own key."""
    acknowledge_each(scope, key_grant_findings())


def report_policy_violations(
    assembly_dir: Path, also_unfinished: Mapping[str, str] | None = None
) -> int:
    """Fail synth (exit 1) when a validation plugin (a cdk-nag pack, CDK's CloudFormation
    rules) reported an unacknowledged finding or did not finish; each line names the plugin.

    CDK writes the report but the CLI still exits 0; a gate that cannot fail is no gate.
    also_unfinished: plugins known to have raised ({name: reason}) that the report may not
    show (CDK drops its record of a failed CloudFormation Validate plugin when
    `@aws-cdk/core:validateAgainstDefaultRules` is off).
    """
    report_path = assembly_dir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    # A plugin that raised (a crashed rule, an engine that failed) reports "failure" with no
    # violations and the reason in its metadata: nothing was checked, so synth fails too.
    unfinished = {
        _plugin_name(plugin): (plugin.get("metadata") or {}).get("error") or "no reason given"
        for plugin in report.get("pluginReports", [])
        if plugin.get("conclusion") == "failure" and not plugin.get("violations")
    }
    for name, reason in (also_unfinished or {}).items():
        unfinished.setdefault(name, reason)
    for name, reason in unfinished.items():
        print(f"error: {name} did not finish and checked nothing: {reason}", file=sys.stderr)
    violations = [
        (
            _plugin_name(plugin),
            violation["ruleName"],
            violation.get("description", ""),
            construct["constructPath"],
        )
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]
    for plugin, rule, description, path in violations:
        print(f"error: {plugin}: {rule} at {path}: {description}".rstrip(": "), file=sys.stderr)
    if violations:
        counts = Counter(plugin for plugin, *_ in violations)
        by_plugin = ", ".join(f"{plugin} {count}" for plugin, count in counts.items())
        print(
            f"error: {len(violations)} unacknowledged finding(s) ({by_plugin}); see {report_path}",
            file=sys.stderr,
        )
        return 1
    return 1 if unfinished else 0


def _plugin_name(plugin_report: dict[str, Any]) -> str:
    return plugin_report.get("pluginName") or "unnamed plugin"


def cfn_lint_findings(template_files: list[Path], ignore: tuple[str, ...] = ()) -> list[str]:
    """cfn-lint's errors, one line each naming the construct path (from the template's
    aws:cdk:path metadata), the rule id and its description, and cfn-lint's message."""
    import subprocess

    command = [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json"]
    if ignore:
        command += ["--ignore-checks", *ignore]
    result = subprocess.run(
        [*command, "--", *map(str, template_files)], capture_output=True, text=True, timeout=600
    )
    # The exit code is a bit mask: 2 errors, 4 warnings, 8 informational; 1 a crash.
    if result.returncode & 1:
        raise RuntimeError(f"cfn-lint failed to run (exit {result.returncode}): {result.stderr}")
    findings = json.loads(result.stdout or "[]")
    templates: dict[str, dict[str, object]] = {}
    lines = []
    for finding in findings:
        rule = finding.get("Rule", {})
        if not str(rule.get("Id", "")).startswith("E"):
            continue
        filename = finding.get("Filename", "")
        if filename not in templates:
            templates[filename] = json.loads(Path(filename).read_text())
        path = finding.get("Location", {}).get("Path") or []
        lines.append(
            f"cfn-lint {rule.get('Id')} ({rule.get('ShortDescription', '')}) at "
            f"{_construct_path(templates[filename], path)}: {finding.get('Message', '')}"
        )
    return lines


def _construct_path(template: dict[str, object], path: list[object]) -> str:
    """Resources/<LogicalId>/... -> the construct path CDK recorded, plus the property path."""
    if len(path) >= 2 and path[0] == "Resources":
        resources = template.get("Resources")
        resource = resources.get(str(path[1]), {}) if isinstance(resources, dict) else {}
        metadata = resource.get("Metadata", {}) if isinstance(resource, dict) else {}
        construct = metadata.get("aws:cdk:path") if isinstance(metadata, dict) else None
        rest = "/".join(str(p) for p in path[2:])
        return f"{construct or path[1]}" + (f" ({rest})" if rest else "")
    return "/".join(str(p) for p in path) or "(template)"
