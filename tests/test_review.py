"""`mlops review`: comparison of two cloud assemblies, Markdown, the CLI wrapper, the workflow.

The assemblies are written by hand in the cloud assembly format `cdk synth` emits (a root
manifest.json listing stacks and a nested stage assembly-<Stage>/ with its own manifest), so
every difference is known. The CDK CLI runs for real where it is installed (`cdk diff
--template` and `cdk synth` of a tiny app), offline and without credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.review import (
    ReviewError,
    add_arguments,
    attach_full_diffs,
    compare_assemblies,
    render_markdown,
    review,
    run,
)
from mlops.review.compare import load_assembly, stage_environment
from mlops.review.model import ReviewReport

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
WORKFLOW = ROOT / ".github" / "workflows" / "pr-review.yml"
STAGE = "dev-us-east-1"
DATA = f"{STAGE}/Data"
SERVING = f"{STAGE}/Serving"
ARN = "arn:aws:sagemaker:us-east-1:222222222222:model-package/flight-delay/{}"

# ---------------------------------------------------------------- hand-made assemblies


def resource(rtype: str, path: str, **props: Any) -> dict[str, Any]:
    return {"Type": rtype, "Properties": props, "Metadata": {"aws:cdk:path": path}}


def data_stack(*, bucket_name: str, with_key: bool, policy_resource: Any) -> dict[str, Any]:
    res = {
        "Bucket": resource("AWS::S3::Bucket", f"{DATA}/Bucket", BucketName=bucket_name),
        "Role": resource(
            "AWS::IAM::Role",
            f"{DATA}/Role/Resource",
            AssumeRolePolicyDocument={
                "Statement": [
                    {
                        "Action": "sts:AssumeRole",
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                    }
                ],
                "Version": "2012-10-17",
            },
        ),
        "RoleDefaultPolicy": resource(
            "AWS::IAM::Policy",
            f"{DATA}/Role/DefaultPolicy/Resource",
            PolicyDocument={
                "Statement": [
                    {"Action": "s3:GetObject", "Effect": "Allow", "Resource": policy_resource}
                ],
                "Version": "2012-10-17",
            },
            PolicyName="RoleDefaultPolicy",
            Roles=[{"Ref": "Role"}],
        ),
        "Sg": resource(
            "AWS::EC2::SecurityGroup",
            f"{DATA}/Sg/Resource",
            GroupDescription="endpoint",
            SecurityGroupIngress=[
                {"CidrIp": "10.0.0.0/16", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}
            ],
        ),
        "CDKMetadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:x"}},
    }
    if with_key:
        res["Key"] = resource("AWS::KMS::Key", f"{DATA}/Key/Resource", KeyPolicy={})
    return {"Resources": res}


def serving_stack(*, model_version: int) -> dict[str, Any]:
    return {
        "Resources": {
            "Model": resource(
                "AWS::SageMaker::Model",
                f"{SERVING}/Model",
                ExecutionRoleArn="arn:aws:iam::222222222222:role/serving",
                PrimaryContainer={
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5",
                    "ModelDataUrl": f"s3://models/flight-delay/v{model_version}/model.tar.gz",
                },
            ),
            "EndpointConfig": resource(
                "AWS::SageMaker::EndpointConfig",
                f"{SERVING}/EndpointConfig",
                ProductionVariants=[
                    {
                        "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                        "VariantName": "main",
                        "InitialInstanceCount": 2,
                        "InstanceType": "ml.m5.large",
                    }
                ],
            ),
            "Endpoint": resource(
                "AWS::SageMaker::Endpoint",
                f"{SERVING}/Endpoint",
                EndpointName="flightdelay-dev",
                EndpointConfigName={"Fn::GetAtt": ["EndpointConfig", "EndpointConfigName"]},
            ),
        }
    }


def tooling_stack() -> dict[str, Any]:
    return {"Resources": {"Topic": resource("AWS::SNS::Topic", "Delivery/Topic/Resource")}}


def releases(version: int) -> dict[str, Any]:
    current = {"model_package_arn": ARN.format(version), "version": version}
    return {"dev": {"current": current, "previous": None}}


def nag_report(*violations: tuple[str, str]) -> dict[str, Any]:
    """The validation-report.json aws-cdk-lib 2.275 writes (pluginReports / violations)."""
    return {
        "version": "55.0.0",
        "title": "Validation Report",
        "pluginReports": [
            {
                "pluginName": "AwsSolutions",
                "pluginVersion": "3.0.2",
                "conclusion": "failure",
                "violations": [
                    {
                        "ruleName": rule,
                        "description": f"{rule} description",
                        "severity": "error",
                        "violatingConstructs": [{"constructPath": path}],
                    }
                    for rule, path in violations
                ],
            }
        ],
    }


def stack_artifact(template_file: str, display: str, stack_name: str) -> dict[str, Any]:
    return {
        "type": "aws:cloudformation:stack",
        "environment": "aws://222222222222/us-east-1",
        "properties": {"templateFile": template_file, "stackName": stack_name},
        "displayName": display,
    }


def write_assembly(
    root: Path,
    stacks: dict[str, dict[str, Any]],
    *,
    nag: dict[str, Any] | None = None,
) -> Path:
    """A cdk.out-like folder: top-level stacks plus one nested stage assembly for STAGE/..."""
    nested_dir = root / f"assembly-{STAGE}"
    nested_dir.mkdir(parents=True)
    top: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for display, template in stacks.items():
        artifact_id = display.replace("/", "").replace("-", "")
        file_name = f"{artifact_id}.template.json"
        if display.startswith(f"{STAGE}/"):
            (nested_dir / file_name).write_text(json.dumps(template, indent=1))
            nested[artifact_id] = stack_artifact(file_name, display, display.replace("/", "-"))
        else:
            (root / file_name).write_text(json.dumps(template, indent=1))
            top[artifact_id] = stack_artifact(file_name, display, display)
    top[f"assembly-{STAGE}"] = {
        "type": "cdk:cloud-assembly",
        "properties": {"directoryName": f"assembly-{STAGE}", "displayName": STAGE},
    }
    (root / "manifest.json").write_text(json.dumps({"version": "36.0.0", "artifacts": top}))
    (nested_dir / "manifest.json").write_text(
        json.dumps({"version": "36.0.0", "artifacts": nested})
    )
    if nag is not None:
        (root / "validation-report.json").write_text(json.dumps(nag))
    return root


def base_stacks() -> dict[str, dict[str, Any]]:
    return {
        "Delivery": tooling_stack(),
        DATA: data_stack(
            bucket_name="flightdelay-dev-data",
            with_key=True,
            policy_resource="arn:aws:s3:::flightdelay-dev-data/*",
        ),
        SERVING: serving_stack(model_version=4),
    }


def head_stacks() -> dict[str, dict[str, Any]]:
    stacks = base_stacks()
    stacks[DATA] = data_stack(
        bucket_name="flightdelay-dev-raw", with_key=False, policy_resource="*"
    )
    stacks[DATA]["Resources"]["Sg"]["Properties"]["SecurityGroupIngress"].append(
        {"CidrIp": "0.0.0.0/0", "FromPort": 22, "IpProtocol": "tcp", "ToPort": 22}
    )
    stacks[SERVING] = serving_stack(model_version=5)
    return stacks


SHARED_FINDING = ("AwsSolutions-S1", f"{DATA}/Bucket")
NEW_FINDING = ("AwsSolutions-IAM5[Resource::*]", f"{DATA}/Role/DefaultPolicy/Resource")


@pytest.fixture()
def trees(tmp_path: Path) -> tuple[Path, Path]:
    base = write_assembly(tmp_path / "base", base_stacks(), nag=nag_report(SHARED_FINDING))
    head = write_assembly(
        tmp_path / "head", head_stacks(), nag=nag_report(SHARED_FINDING, NEW_FINDING)
    )
    return base, head


@pytest.fixture()
def report(trees: tuple[Path, Path]) -> ReviewReport:
    base, head = trees
    return compare_assemblies(base, head, releases(4), releases(5))


def section(markdown: str, heading: str) -> str:
    """The text under one '#### heading' up to the next heading."""
    start = markdown.index(heading)
    rest = markdown[start + len(heading) :]
    end = rest.find("\n####")
    return rest if end < 0 else rest[:end]


# ---------------------------------------------------------------- comparison


def test_loads_top_level_and_nested_stage_stacks(trees: tuple[Path, Path]) -> None:
    stacks = load_assembly(trees[0])
    assert sorted(stacks) == sorted(["Delivery", DATA, SERVING])
    assert stacks[DATA].stack_name == "dev-us-east-1-Data"
    assert "CDKMetadata" in stacks[DATA].template["Resources"]


def test_replaced_bucket_is_called_out_first(report: ReviewReport) -> None:
    bucket = next(c for c in report.changes() if c.logical_id == "Bucket")
    assert (bucket.kind, bucket.replacing) == ("replaced", ("BucketName",))
    assert bucket in report.stateful_warnings
    md = render_markdown(report)
    warning = section(md, "#### ⚠️ Stateful resources replaced or removed")
    assert "`Bucket` (AWS::S3::Bucket)" in warning
    assert "BucketName requires replacement" in warning
    # Stateful warnings come before every other section.
    assert md.index("Stateful resources") < min(
        md.index("#### Model versions"), md.index("#### IAM changes")
    )


def test_removed_kms_key_is_a_stateful_warning(report: ReviewReport) -> None:
    key = next(c for c in report.changes() if c.logical_id == "Key")
    assert key.kind == "removed"
    assert key in report.stateful_warnings
    warning = section(render_markdown(report), "#### ⚠️ Stateful resources replaced or removed")
    assert "`Key` (AWS::KMS::Key)" in warning
    assert "removed" in warning


def test_broadened_policy_is_flagged(report: ReviewReport) -> None:
    policy = [c for c in report.iam if c.logical_id == "RoleDefaultPolicy"]
    added = [c for c in policy if c.sign == "+"]
    removed = [c for c in policy if c.sign == "-"]
    assert [(c.actions, c.resources) for c in added] == [(("s3:GetObject",), ("*",))]
    assert [c.resources for c in removed] == [("arn:aws:s3:::flightdelay-dev-data/*",)]
    assert added[0].broadened == ('new "*" in Resource',)
    assert not removed[0].broadened
    # The unchanged trust policy of the role is not reported.
    assert not [c for c in report.iam if c.logical_id == "Role"]
    iam = section(render_markdown(report), "#### IAM changes")
    assert "`+` Allow `s3:GetObject` on `*`" in iam
    assert "**broadened**" in iam
    assert "`-` Allow `s3:GetObject` on `arn:aws:s3:::flightdelay-dev-data/*`" in iam


def test_security_group_opened_to_the_internet(report: ReviewReport) -> None:
    assert [(c.sign, c.rule, c.open_to_world) for c in report.security_groups] == [
        ("+", "tcp port 22 from 0.0.0.0/0", True)
    ]
    assert "open to the internet" in section(render_markdown(report), "#### Security group changes")


def test_new_model_version_and_the_endpoint_update_it_causes(report: ReviewReport) -> None:
    assert [(m.environment, m.base, m.head) for m in report.models] == [
        ("dev", f"version 4 ({ARN.format(4)})", f"version 5 ({ARN.format(5)})")
    ]
    by_id = {c.logical_id: c for c in report.changes() if c.stack == SERVING}
    # New artifact -> the model is replaced -> the endpoint config that names it is replaced
    # -> the endpoint moves to the new config (a blue/green update, not a replacement).
    assert by_id["Model"].kind == "replaced"
    assert by_id["Model"].replacing == ("PrimaryContainer",)
    assert by_id["EndpointConfig"].kind == "replaced"
    assert by_id["EndpointConfig"].replacing == ("ProductionVariants",)
    assert by_id["Endpoint"].kind == "modified"
    assert [(e.endpoint_name, e.environment) for e in report.endpoint_updates] == [
        ("flightdelay-dev", "dev")
    ]
    models = section(render_markdown(report), "#### Model versions")
    assert "**dev**: version 4" in models
    assert "→ version 5" in models
    assert "endpoint update: `flightdelay-dev`" in models


def test_new_nag_finding_only(report: ReviewReport) -> None:
    assert [(f.rule, f.resource) for f in report.new_findings] == [NEW_FINDING]
    assert report.resolved_findings == []
    findings = section(render_markdown(report), "#### ⚠️ New cdk-nag findings")
    assert "AwsSolutions-IAM5[Resource::*]" in findings
    assert "AwsSolutions-S1" not in findings


def test_unchanged_stack_is_not_listed(report: ReviewReport) -> None:
    assert "Delivery" not in [s.key for s in report.stacks]
    assert sorted(s.key for s in report.stacks) == [DATA, SERVING]


def test_identical_trees_say_no_changes(trees: tuple[Path, Path]) -> None:
    base, _ = trees
    report = compare_assemblies(base, base, releases(4), releases(4))
    md = render_markdown(report)
    assert not report.has_changes
    assert "No changes" in md
    assert "####" not in md
    assert len(md.strip().splitlines()) == 3  # title, blank line, "No changes"


def test_metadata_only_changes_are_not_changes(tmp_path: Path) -> None:
    base = write_assembly(tmp_path / "b", base_stacks())
    moved = base_stacks()
    for r in moved[DATA]["Resources"].values():
        r["Metadata"] = {"aws:asset:path": "asset.123"}
    head = write_assembly(tmp_path / "h", moved)
    assert not compare_assemblies(base, head, None, None).has_changes


def test_logical_id_change_of_the_same_resource_is_a_replacement(tmp_path: Path) -> None:
    base = write_assembly(tmp_path / "b", base_stacks())
    moved = base_stacks()
    moved[DATA]["Resources"]["BucketRenamed"] = moved[DATA]["Resources"].pop("Bucket")
    head = write_assembly(tmp_path / "h", moved)
    report = compare_assemblies(base, head, None, None)
    [change] = report.changes()
    assert (change.logical_id, change.kind) == ("BucketRenamed", "replaced")
    assert change.note == "logical ID changed from Bucket"
    assert report.stateful_warnings == [change]


def test_kms_key_spec_change_fails_the_update(tmp_path: Path) -> None:
    base = write_assembly(tmp_path / "b", base_stacks())
    changed = base_stacks()
    changed[DATA]["Resources"]["Key"]["Properties"]["KeySpec"] = "RSA_2048"
    head = write_assembly(tmp_path / "h", changed)
    report = compare_assemblies(base, head, None, None)
    [change] = report.changes()
    assert (change.kind, change.failing) == ("modified", ("KeySpec",))
    assert "update FAILS" in section(render_markdown(report), "#### ⚠️ Stateful")


def test_removed_stack_lists_every_resource_as_removed(tmp_path: Path) -> None:
    base = write_assembly(tmp_path / "b", base_stacks())
    fewer = base_stacks()
    del fewer[DATA]
    head = write_assembly(tmp_path / "h", fewer)
    report = compare_assemblies(base, head, None, None)
    [stack] = report.stacks
    assert (stack.key, stack.status) == (DATA, "removed")
    assert {c.logical_id for c in report.stateful_warnings} == {"Bucket", "Key"}


def test_release_manifest_read_defensively(tmp_path: Path) -> None:
    base = write_assembly(tmp_path / "b", base_stacks())
    weird = {"environments": {"dev": "not a mapping", "prod": {"current": {"version": 2}}}}
    report = compare_assemblies(base, base, None, weird)
    assert [(m.environment, m.base, m.head) for m in report.models] == [("prod", None, "version 2")]


@pytest.mark.parametrize(
    ("key", "env"),
    [
        ("dev-us-east-1/Serving", "dev"),
        ("Delivery/prod-eu-west-1/Serving", "prod"),
        ("DevUsEast1/Serving", "dev"),
        ("development/Serving", None),
        ("Serving", None),
    ],
)
def test_stage_environment(key: str, env: str | None) -> None:
    assert stage_environment(key, ["dev", "staging", "prod"]) == env


def test_markdown_stays_under_the_comment_limit(report: ReviewReport) -> None:
    for stack in report.stacks:
        stack.full_diff = "x\n" * 30_000
    md = render_markdown(report, max_chars=20_000)
    assert len(md) < 20_000
    assert "Diff omitted to fit the comment size limit" in md
    # Even the summary is cut (at a line) when it alone is too long; warnings stay on top.
    short = render_markdown(report, max_chars=1_500)
    assert len(short) < 1_500
    assert "Stateful resources replaced or removed" in short
    assert "truncated to fit the comment size limit" in short


def test_added_stack_is_summarized_by_resource_type(tmp_path: Path) -> None:
    fewer = base_stacks()
    del fewer[SERVING]
    base = write_assembly(tmp_path / "b", fewer)
    head = write_assembly(tmp_path / "h", base_stacks())
    report = compare_assemblies(base, head, None, None)
    assert [(s.key, s.status, len(s.changes)) for s in report.stacks] == [(SERVING, "added", 3)]
    per_stack = section(render_markdown(report), "#### Resources per stack")
    assert (
        "1 AWS::SageMaker::Endpoint, 1 AWS::SageMaker::EndpointConfig, "
        "1 AWS::SageMaker::Model added" in per_stack
    )
    assert [e.reason for e in report.endpoint_updates] == ["new endpoint"]


# ---------------------------------------------------------------- full diffs


def test_json_diff_fallback(report: ReviewReport, tmp_path: Path) -> None:
    attach_full_diffs(report, None, tmp_path, tmp_path, dict(os.environ))
    assert report.diff_tool == "json"
    data = next(s for s in report.stacks if s.key == DATA)
    lines = [ln.replace(" ", "") for ln in (data.full_diff or "").splitlines()]
    assert '-"BucketName":"flightdelay-dev-data"' in lines
    assert '+"BucketName":"flightdelay-dev-raw"' in lines
    assert "<details><summary>dev-us-east-1/Data</summary>" in render_markdown(report)


@pytest.mark.skipif(not CDK.exists(), reason="CDK CLI not installed (npm ci)")
def test_cdk_diff_template_runs_offline(
    trees: tuple[Path, Path], report: ReviewReport, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    attach_full_diffs(report, CDK, trees[1], tmp_path, env)
    assert report.diff_tool == "cdk"
    data = next(s for s in report.stacks if s.key == DATA)
    assert "BucketName (requires replacement)" in (data.full_diff or "")
    assert "[-] AWS::KMS::Key" in (data.full_diff or "")


# ---------------------------------------------------------------- review(): git + synth


TINY_APP = '''
"""A stand-in CDK app: writes a cloud assembly without aws-cdk-lib (fast, no jsii)."""
import json, os, pathlib
out = pathlib.Path(os.environ["CDK_OUTDIR"])
name = pathlib.Path("bucket.txt").read_text().strip()
template = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket",
                                     "Properties": {"BucketName": name}}}}
(out / "Data.template.json").write_text(json.dumps(template))
manifest = {"version": "36.0.0", "artifacts": {"Data": {
    "type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
    "properties": {"templateFile": "Data.template.json"}, "displayName": "Data"}}}
(out / "manifest.json").write_text(json.dumps(manifest))
'''


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.fixture()
def tiny_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text(TINY_APP)
    (repo / "bucket.txt").write_text("data-v1\n")
    (repo / "config").mkdir()
    (repo / "config" / "releases.yaml").write_text(yaml.safe_dump(releases(4)))
    (repo / "node_modules").symlink_to(ROOT / "node_modules")
    (repo / ".venv").symlink_to(ROOT / ".venv")
    (repo / ".gitignore").write_text("node_modules\n.venv\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


@pytest.mark.skipif(not CDK.exists(), reason="CDK CLI not installed (npm ci)")
def test_mlops_review_of_a_clean_tree_prints_no_changes(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny_repo / "review.md"
    monkeypatch.chdir(tiny_repo / "config")  # anywhere inside the repository
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["--base", "HEAD", "--output", str(out)])) == 0
    printed = capsys.readouterr().out
    assert "No changes" in printed
    assert "####" not in printed
    assert out.read_text() == printed
    assert sorted(p.name for p in tiny_repo.iterdir() if p.name.startswith(".review")) == []


@pytest.mark.skipif(not CDK.exists(), reason="CDK CLI not installed (npm ci)")
def test_an_output_that_fails_to_write_after_the_synths_keeps_the_review_and_the_old_file(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    import mlops.review.command as command

    out = tiny_repo / "review.md"
    out.write_text("the earlier review\n")

    def read_only(*_args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(command.os, "replace", read_only)
    monkeypatch.chdir(tiny_repo)
    assert run(argparse.Namespace(base="HEAD", head_dir=None, output=out)) == 2
    captured = capsys.readouterr()
    assert "No changes" in captured.out  # the finished review, not lost
    assert captured.err == (
        f"ERROR: --output {out}: cannot write the review (Read-only file system); it is on "
        "standard output above\n"
    )
    assert out.read_text() == "the earlier review\n"
    assert sorted(p.name for p in tiny_repo.iterdir() if p.name.startswith(".review")) == []


@pytest.mark.skipif(not CDK.exists(), reason="CDK CLI not installed (npm ci)")
def test_review_names_the_working_tree_changes(tiny_repo: Path) -> None:
    (tiny_repo / "bucket.txt").write_text("data-v2\n")
    (tiny_repo / "config" / "releases.yaml").write_text(yaml.safe_dump(releases(5)))
    md = review("main", tiny_repo, None)
    assert "`Bucket` (AWS::S3::Bucket)" in section(md, "#### ⚠️ Stateful resources")
    assert "**dev**: version 4" in section(md, "#### Model versions")
    assert "BucketName (requires replacement)" in md  # from `cdk diff --template`


def test_unknown_ref_is_one_error_line(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tiny_repo)
    assert run(argparse.Namespace(base="no-such-branch", head_dir=None, output=None)) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: --base 'no-such-branch' is not a commit")
    assert len(err.strip().splitlines()) == 1


def test_head_dir_must_be_a_cloud_assembly(tiny_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="is not a cloud assembly"):
        review("HEAD", tiny_repo, None, head_dir=tmp_path)


@pytest.mark.parametrize("where", ["a-folder", "no-such-folder/review.md", "a-file/review.md"])
def test_an_output_it_cannot_write_is_refused_before_any_synth(
    tiny_repo: Path,
    tmp_path: Path,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import mlops.review.command as command

    def no_synth(*_args: object) -> None:
        raise AssertionError("synthesized before checking --output")

    monkeypatch.setattr(command, "_synth", no_synth)
    monkeypatch.setattr(command, "_synth_or_empty", no_synth)
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("kept")
    output = tmp_path / where
    monkeypatch.chdir(tiny_repo)
    assert run(argparse.Namespace(base="HEAD", head_dir=None, output=output)) == 2
    err = capsys.readouterr().err
    expected = (
        f"ERROR: --output {output} is a folder; give a file path\n"
        if where == "a-folder"
        else f"ERROR: --output {output}: {output.parent} is not an existing folder; give a file "
        "path in one\n"
    )
    assert err == expected
    assert (tmp_path / "a-file").read_text() == "kept"


def test_review_needs_the_cdk_cli(tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="run `make install`"):
        review("HEAD", tmp_path, None)


# ---------------------------------------------------------------- the workflow


def test_workflow_triggers_permissions_and_steps() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "pull_request" in triggers
    assert workflow["permissions"] == {}
    review, comment = workflow["jobs"]["review"], workflow["jobs"]["comment"]
    # The job that runs the pull request's code cannot write; the one that writes runs none.
    assert review["permissions"] == {"contents": "read"}
    assert comment["permissions"] == {"pull-requests": "write"}
    assert comment["needs"] == "review"
    assert not any("run" in s or "actions/checkout" in s.get("uses", "") for s in comment["steps"])
    steps = review["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps + comment["steps"] if "uses" in s}
    checkout = uses["actions/checkout"]["with"]
    assert checkout["fetch-depth"] == 0
    assert checkout["persist-credentials"] is False  # no token left in .git/config
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert str(uses["actions/setup-node"]["with"]["node-version"]) == "20"
    for step in uses.values():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    runs = [s.get("run", "") for s in steps]
    test_step = next(i for i, r in enumerate(runs) if "make test" in r)
    review_step = next(i for i, r in enumerate(runs) if ".venv/bin/mlops review --base" in r)
    assert test_step < review_step
    assert "origin/${BASE_REF}" in runs[review_step]
    assert steps[review_step]["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert "--output review.md" in runs[review_step]
    assert uses["actions/upload-artifact"]["with"]["name"] == "mlops-review"
    assert uses["actions/download-artifact"]["with"]["name"] == "mlops-review"
    script = uses["actions/github-script"]["with"]["script"]
    assert "<!-- mlops-review -->" in script
    assert "updateComment" in script
    text = WORKFLOW.read_text()
    assert "configure-aws-credentials" not in text
    assert "secrets." not in text


def test_validation_report_legacy_format(tmp_path: Path) -> None:
    legacy = {
        "title": "Validation Report",
        "pluginReports": [
            {
                "summary": {"pluginName": "AwsSolutions", "status": "failure"},
                "violations": [
                    {
                        "ruleName": "AwsSolutions-S10",
                        "description": "no TLS",
                        "violatingConstructs": [
                            {
                                "constructPath": "",
                                "templatePath": "/tmp/x/Data.template.json",
                                "resourceLogicalId": "Bucket",
                                "locations": [],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    base = write_assembly(tmp_path / "b", base_stacks())
    head = write_assembly(tmp_path / "h", base_stacks())
    (head / "policy-validation-report.json").write_text(json.dumps(legacy))
    report = compare_assemblies(base, head, None, None)
    assert [(f.plugin, f.rule, f.resource) for f in report.new_findings] == [
        ("AwsSolutions", "AwsSolutions-S10", "Data.template.json:Bucket")
    ]
    assert "New cdk-nag findings" in render_markdown(report)


def test_new_acknowledgment_is_listed_with_its_reason(tmp_path: Path) -> None:
    acked = nag_report()
    acked["pluginReports"][0]["suppressedViolations"] = [
        {
            "ruleName": "AwsSolutions-S1",
            "description": "server access logs",
            "severity": "error",
            "violatingConstructs": [{"constructPath": f"{DATA}/Bucket"}],
            "acknowledgedId": "AwsSolutions::AwsSolutions-S1",
            "reason": "access logs go to the central bucket",
        }
    ]
    base = write_assembly(tmp_path / "b", base_stacks(), nag=nag_report(SHARED_FINDING))
    head = write_assembly(tmp_path / "h", base_stacks(), nag=acked)
    report = compare_assemblies(base, head, None, None)
    assert [f.rule for f in report.new_acknowledgments] == ["AwsSolutions-S1"]
    assert [f.rule for f in report.resolved_findings] == ["AwsSolutions-S1"]
    assert report.new_findings == []
    md = render_markdown(report)
    assert "(reason: access logs go to the central bucket)" in section(
        md, "#### Newly acknowledged findings"
    )
