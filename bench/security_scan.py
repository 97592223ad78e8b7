"""Security figures of a synthesized app (issue 13's "measure and report"), printed.

    .venv/bin/python bench/security_scan.py [--assembly DIR] [--tools BIN]

--assembly  a `cdk synth` output (default: the default app, synthesized into a temp folder)
--tools     a bin folder holding `checkov` and `cfripper` (install them in a throwaway venv:
            `python3 -m venv /tmp/sec && /tmp/sec/bin/pip install checkov cfripper`; they are
            not project dependencies). Without it, only the figures below the line are printed.

Printed: checkov failed checks by id; cfripper findings by rule, each template run with
--resolve and its own account (cfripper's parser, pycfmodel, rejects Fn::GetStackOutput and
fractional alarm thresholds: a copy of each template has them replaced by placeholders);
the cross-account statements and how many name exact roles (tests/test_cross_account.py's
rules, the CDK Pipelines exception counted apart); every cdk-nag acknowledgment, grouped by
rule, each reason with its count. Asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import DEFAULT_CONFIG, stack_templates, synth_app  # noqa: E402
from test_cross_account import (  # noqa: E402
    UNCONDITIONED_LIBRARY_GRANT,
    _listed,
    _principal_arns,
    cross_account_statements,
    problems,
)

from mlops.config import load_config  # noqa: E402


def _templates(assembly: Path) -> list[Path]:
    return sorted(assembly.rglob("*.template.json"))


def checkov(tools: Path, assembly: Path) -> collections.Counter[str]:
    files = [arg for f in _templates(assembly) for arg in ("-f", str(f))]
    command = [str(tools / "checkov"), *files, "--framework", "cloudformation", "-o", "json"]
    result = subprocess.run([*command, "--quiet", "--compact"], capture_output=True, text=True)
    reports = json.loads(result.stdout)
    failed = [
        f"{check['check_id']} {check['check_name']}"
        for report in (reports if isinstance(reports, list) else [reports])
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    return collections.Counter(failed)


def _parsable(value: Any) -> Any:
    if isinstance(value, dict):
        if list(value) == ["Fn::GetStackOutput"]:
            return f"IMPORTED-{value['Fn::GetStackOutput'].get('OutputName', 'output')}"
        return {k: _parsable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_parsable(v) for v in value]
    return value


def cfripper(tools: Path, assembly: Path, accounts: dict[str, str]) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        for template_path in _templates(assembly):
            template = _parsable(json.loads(template_path.read_text()))
            for resource in template.get("Resources", {}).values():
                properties = resource.get("Properties", {})
                if resource["Type"] == "AWS::CloudWatch::Alarm" and isinstance(
                    properties.get("Threshold"), float
                ):
                    properties["Threshold"] = int(properties["Threshold"] * 1000)
            copy = Path(folder) / template_path.name
            copy.write_text(json.dumps(template))
            account = accounts.get(template_path.name, "")
            command = [str(tools / "cfripper"), str(copy), "--resolve", "--format", "txt"]
            run = subprocess.run(
                [*command, "--aws-account-id", account], capture_output=True, text=True
            )
            if run.returncode not in (0, 2):
                found[f"(cfripper failed on {template_path.name})"] += 1
            for line in run.stdout.splitlines():
                if match := re.match(r"^\s+- (\w+):", line):
                    found[match.group(1)] += 1
    return found


def cross_account(templates: dict[str, Any], accounts: dict[str, str]) -> list[str]:
    statements = cross_account_statements(templates, accounts)
    where_ok, actions_ok, principal_ok = UNCONDITIONED_LIBRARY_GRANT
    library = [
        where
        for where, s in statements
        if where_ok.match(where)
        and set(_listed(s["Action"])) <= actions_ok
        and all(principal_ok.match(a) for a in _principal_arns(s))
        and problems(s) == ["no condition"]
    ]
    failing = [(w, p) for w, s in statements if (p := problems(s)) and w not in library]
    lines = [
        f"cross-account statements: {len(statements)}; naming exact roles, conditioned: "
        f"{len(statements) - len(library) - len(failing)}; CDK Pipelines' deploy-role reads "
        f"(named, no condition): {len(library)}; failing: {len(failing)}"
    ]
    lines += [f"  {where}: {'; '.join(found)}" for where, found in failing]
    return lines


def acknowledgments(assembly: Path) -> dict[str, collections.Counter[str]]:
    """cdk-nag 3 records each acknowledgment as aws:cdk:acknowledged-rules metadata."""
    by_rule: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    seen = set()
    for metadata in sorted(assembly.rglob("*.metadata.json")):
        for path, entries in json.loads(metadata.read_text()).items():
            for entry in entries:
                if entry.get("type") != "aws:cdk:acknowledged-rules":
                    continue
                for rule, reason in entry["data"].items():
                    if (path, rule) not in seen:
                        seen.add((path, rule))
                        rule = re.sub(r"\[.*", "", rule.removeprefix("Annotation::"))
                        by_rule[rule][reason] += 1
    return by_rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assembly", type=Path)
    parser.add_argument("--tools", type=Path)
    args = parser.parse_args()
    platform = load_config(DEFAULT_CONFIG)
    with tempfile.TemporaryDirectory() as folder:
        assembly = args.assembly or Path(folder)
        if args.assembly is None:
            synth_app(platform, assembly)
        templates = stack_templates(assembly)
        by_stage = {
            f"{env.name}-{region}": env.account
            for env in platform.environments.values()
            for region in env.regions
        }
        accounts = {
            path: by_stage.get(path.split("/")[0], platform.tooling.account) for path in templates
        }
        if args.tools:
            failed = checkov(args.tools, assembly)
            print(f"checkov failed checks: {sum(failed.values())}")
            for check, count in failed.most_common():
                print(f"  {count:4d}  {check}")
            by_file = {
                f.name: by_stage.get(
                    f.parent.name.removeprefix("assembly-"), platform.tooling.account
                )
                for f in _templates(assembly)
            }
            findings = cfripper(args.tools, assembly, by_file)
            print(f"cfripper findings: {sum(findings.values())}")
            for rule, count in findings.most_common():
                print(f"  {count:4d}  {rule}")
        print("\n".join(cross_account(templates, accounts)))
        acknowledged = acknowledgments(assembly)
        total = sum(sum(c.values()) for c in acknowledged.values())
        print(f"cdk-nag acknowledgments: {total} under {len(acknowledged)} rules")
        for rule in sorted(acknowledged):
            print(f"{rule} ({sum(acknowledged[rule].values())})")
            for reason, count in acknowledged[rule].most_common():
                print(f"  {count:4d}  {reason}")


if __name__ == "__main__":
    main()
