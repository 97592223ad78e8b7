"""The whole app: every stage synthesizes, cdk-nag finds nothing, cfn-lint finds no error."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from mlops.config import PlatformConfig
from mlops.nag import cfn_lint_findings, report_policy_violations

ROOT = Path(__file__).resolve().parents[1]


def test_one_stage_per_environment_and_region(platform: PlatformConfig, templates: dict) -> None:  # type: ignore[type-arg]
    expected = {
        f"{env.name}-{region}"
        for env in platform.environments.values()
        if env.account != "from-cli"
        for region in env.regions
    }
    stages = {path.split("/")[0] for path in templates if "/" in path}
    assert expected <= stages
    assert len(expected) == 6


def test_no_cdk_nag_findings(assembly_dir: Path) -> None:
    report_path = assembly_dir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    violations = [
        (v["ruleName"], [c["constructPath"] for c in v["violatingConstructs"]])
        for plugin in report.get("pluginReports", [])
        for v in plugin["violations"]
    ]
    assert violations == []
    assert report_policy_violations(assembly_dir) == 0


def test_an_unacknowledged_finding_fails_synth(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Leaky", env=cdk.Environment(account="123456789012", region="us-east-1"))
    s3.Bucket(stack, "Plain")  # no access logs, no TLS enforcement: AwsSolutions-S1, S10
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    # The CLI path only writes the report; app.py turns it into exit 1.
    assert report_policy_violations(tmp_path) == 1


def test_cfn_lint_finds_no_errors(assembly_dir: Path) -> None:
    template_files = sorted(assembly_dir.rglob("*.template.json"))
    assert template_files
    errors = cfn_lint_findings(template_files, ignore=("W3005",))
    assert errors == [], "\n".join(errors)


def test_cfn_lint_findings_name_the_construct_and_the_rule(tmp_path: Path) -> None:
    """A template with a deploy-time mistake: the line names the construct path, the rule
    and what the rule checks, not just an id and a JSON pointer."""
    template = {
        "Resources": {
            "QueueABC": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": 9999999},
                "Metadata": {"aws:cdk:path": "prod-us-east-1/Serving/FailureAlerts/Queue"},
            }
        }
    }
    path = tmp_path / "bad.template.json"
    path.write_text(json.dumps(template))
    [line] = cfn_lint_findings([path])
    assert line.startswith("cfn-lint E3034 (")
    assert (
        "at prod-us-east-1/Serving/FailureAlerts/Queue (Properties/MessageRetentionPeriod)" in line
    )


def test_cdk_nag_failures_name_path_and_description(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = cdk.App(outdir=str(tmp_path))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Leaky", env=cdk.Environment(account="123456789012", region="us-east-1"))
    s3.Bucket(stack, "Plain")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    capsys.readouterr()
    assert report_policy_violations(tmp_path) == 1
    lines = capsys.readouterr().err.splitlines()
    assert (
        "error: AwsSolutions: AwsSolutions-S1 at Leaky/Plain/Resource: "
        "The S3 Bucket has server access logs disabled."
    ) in lines


def test_each_failure_is_labelled_by_the_plugin_that_reported_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CloudFormation rule's finding is not cdk-nag's: the line names CDK's plugin."""

    def plugin(name: str, rule: str, path: str) -> dict[str, object]:
        violation = {"ruleName": rule, "description": "d", "violatingConstructs": []}
        violation["violatingConstructs"] = [{"constructPath": path}]
        return {"pluginName": name, "violations": [violation]}

    report = {
        "pluginReports": [
            plugin("CloudFormation Validate", "F3002", "Bad/Handle"),
            plugin("AwsSolutions", "AwsSolutions-S1", "Leaky/Plain/Resource"),
            plugin("AwsSolutions", "AwsSolutions-S10", "Leaky/Plain/Resource"),
        ]
    }
    (tmp_path / "validation-report.json").write_text(json.dumps(report))
    assert report_policy_violations(tmp_path) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[:3] == [
        "error: CloudFormation Validate: F3002 at Bad/Handle: d",
        "error: AwsSolutions: AwsSolutions-S1 at Leaky/Plain/Resource: d",
        "error: AwsSolutions: AwsSolutions-S10 at Leaky/Plain/Resource: d",
    ]
    assert lines[3].startswith(
        "error: 3 unacknowledged finding(s) (CloudFormation Validate 1, AwsSolutions 2); see "
    )


def test_both_rule_packs_run_aws_solutions_and_nist(tmp_path: Path) -> None:
    from mlops.nag import add_rule_packs

    app = cdk.App(outdir=str(tmp_path))
    add_rule_packs(app)
    stack = cdk.Stack(app, "Leaky", env=cdk.Environment(account="123456789012", region="us-east-1"))
    s3.Bucket(stack, "Plain")
    with pytest.raises(RuntimeError) as failure:
        app.synth()
    message = str(failure.value)
    assert "AwsSolutions-S1" in message
    assert "NIST.800.53.R5-S3BucketLoggingEnabled" in message


def test_synth_refuses_a_release_outside_the_hub_registry(platform: PlatformConfig) -> None:
    """Issue #12: a package ARN of another account (or region, or group) for prod."""
    import dataclasses

    from mlops.app_builder import AppOptions, check_releases
    from mlops.release_manifest import ManifestError
    from tests.conftest import default_releases

    releases = default_releases(platform)
    check_releases(platform, releases, AppOptions())  # the committed manifest passes
    prod = releases.get("prod")
    assert prod.current is not None
    foreign = dataclasses.replace(
        prod.current,
        model_package_arn=prod.current.model_package_arn.replace(prod.current.account, "9" * 12),
    )
    bad = releases.with_environment("prod", dataclasses.replace(prod, current=foreign))
    with pytest.raises(ManifestError, match=r"prod\.current\.model_package_arn: account 9{12} "):
        check_releases(platform, bad, AppOptions())


@pytest.mark.parametrize(
    ("conclusion", "violations", "fails"),
    [("failure", [], True), ("success", [], False)],
)
def test_a_plugin_that_did_not_finish_fails_synth(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    conclusion: str,
    violations: list[object],
    fails: bool,
) -> None:
    """CDK records a plugin that raised as a failure with no violations and the reason in
    its metadata (the CLI does not fail synth on it): that plugin checked nothing."""
    plugin = {
        "pluginName": "CloudFormation Validate",
        "conclusion": conclusion,
        "violations": violations,
        **({"metadata": {"error": "Validation plugin failed: disk full"}} if fails else {}),
    }
    (tmp_path / "validation-report.json").write_text(json.dumps({"pluginReports": [plugin]}))
    assert report_policy_violations(tmp_path) == (1 if fails else 0)
    err = capsys.readouterr().err
    if fails:
        assert err.strip() == (
            "error: CloudFormation Validate did not finish and checked nothing: "
            "Validation plugin failed: disk full"
        )
    else:
        assert err == ""


def test_a_plugin_that_failed_on_findings_is_not_reported_as_unfinished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    violation = {"ruleName": "F3002", "description": "d", "violatingConstructs": []}
    violation["violatingConstructs"] = [{"constructPath": "Bad/Handle"}]
    plugin = {"pluginName": "CloudFormation Validate", "conclusion": "failure"}
    plugin["violations"] = [violation]
    (tmp_path / "validation-report.json").write_text(json.dumps({"pluginReports": [plugin]}))
    assert report_policy_violations(tmp_path) == 1
    err = capsys.readouterr().err
    assert "F3002 at Bad/Handle" in err and "did not finish" not in err


def test_a_plugin_known_to_have_raised_fails_synth_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """app.py passes what its own plugin recorded: CDK may have dropped it from the report
    (no report at all here), or kept it (then one line, not two)."""
    raised = {"CloudFormation Validate": "RuntimeError: engine crashed"}
    assert report_policy_violations(tmp_path, also_unfinished=raised) == 1
    assert capsys.readouterr().err.strip() == (
        "error: CloudFormation Validate did not finish and checked nothing: "
        "RuntimeError: engine crashed"
    )
    plugin = {"pluginName": "CloudFormation Validate", "conclusion": "failure", "violations": []}
    (tmp_path / "validation-report.json").write_text(json.dumps({"pluginReports": [plugin]}))
    assert report_policy_violations(tmp_path, also_unfinished=raised) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert report_policy_violations(tmp_path / "elsewhere", also_unfinished={}) == 0
