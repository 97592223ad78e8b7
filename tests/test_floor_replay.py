"""bench/floor_replay.py (the replay app of bench/bench_synth_floor.py) and
bench/assembly_compare.py (its check): a synthesized assembly rebuilt from plain L1 elements
writes the same templates, byte for byte; the comparison it is judged by can fail; what the
replay cannot rebuild is refused in one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from conftest import cdk_json_context

from bench import assembly_compare, floor_replay
from mlops.app_context import NO_NODE_STACK_TRACES

ROOT = Path(__file__).resolve().parents[1]
# What `cdk synth` passes (feature flags, path metadata), with CDK's analytics resource on.
CONTEXT = {**cdk_json_context(), **NO_NODE_STACK_TRACES, "aws:cdk:version-reporting": True}
EU = cdk.Environment(account="111111111111", region="eu-west-1")


def _original_app(outdir: Path) -> cdk.App:
    """A stage of two stacks joined by a cross-stack reference, and a stack outside any
    stage, between them every template section and resource attribute the replay handles."""
    app = cdk.App(outdir=str(outdir), context=CONTEXT, builtin_cloud_formation_validation=False)
    stage = cdk.Stage(app, "dev-eu-west-1", env=EU)
    data = cdk.Stack(
        stage, "Data", description="fixture", termination_protection=True, tags={"team": "ml"}
    )
    data.template_options.metadata = {"Owner": {"Team": "ml"}}
    key = kms.Key(data, "Key", removal_policy=cdk.RemovalPolicy.RETAIN)
    bucket = s3.Bucket(data, "Bucket", encryption_key=key, enforce_ssl=True)
    queue = sqs.Queue(data, "Queue", encryption_master_key=key)
    queue.node.add_dependency(bucket)  # DependsOn
    threshold = cdk.CfnParameter(data, "Threshold", type="Number", default=3, min_value=1)
    is_eu = cdk.CfnCondition(
        data, "IsEu", expression=cdk.Fn.condition_equals(cdk.Aws.REGION, "eu-west-1")
    )
    cdk.CfnMapping(data, "Sizes", mapping={"eu-west-1": {"Size": "small"}})
    topic = cdk.CfnResource(data, "Topic", type="AWS::SNS::Topic")
    topic.cfn_options.condition = is_eu
    cdk.CfnOutput(
        data,
        "TopicArn",
        value=topic.ref,
        export_name="fixture-topic",
        condition=is_eu,
        description=threshold.value_as_string,
    )
    use = cdk.Stack(stage, "Use")
    sqs.Queue(use, "Copy", encryption_master_key=key)  # a cross-stack (weak) reference
    cdk.CfnRule(
        use,
        "OnlyEu",
        assertions=[
            cdk.CfnRuleAssertion(
                assert_=cdk.Fn.condition_equals(cdk.Aws.REGION, "eu-west-1"),
                assert_description="EU only",
            )
        ],
    )
    tooling = cdk.Stack(app, "Tooling", env=EU)
    tooling.add_transform("AWS::Serverless-2016-10-31")
    cdk.CfnResource(tooling, "Nothing", type="AWS::CloudFormation::WaitConditionHandle")
    return app


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("floor")
    original = Path(_original_app(folder / "original").synth().directory)
    replay = cdk.App(
        outdir=str(folder / "replayed"),
        context=CONTEXT,
        post_cli_context=floor_replay.POST_CLI_CONTEXT,
        builtin_cloud_formation_validation=False,
    )
    floor_replay.replay_app(replay, floor_replay.read_assembly(original))
    return original, Path(replay.synth().directory)


def _templates(assembly: Path) -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in assembly.rglob("*.template.json")}


def test_the_fixture_holds_what_the_replay_must_rebuild(assemblies: tuple[Path, Path]) -> None:
    templates = _templates(assemblies[0])
    sections = {section for template in templates.values() for section in template}
    assert sections >= {"Description", "Metadata", "Transform", "Parameters", "Conditions"}
    assert sections >= {"Mappings", "Rules", "Resources", "Outputs"}
    text = json.dumps(templates)
    for attribute in ('"DependsOn"', '"DeletionPolicy"', '"Condition"', '"Export"'):
        assert attribute in text
    assert "Fn::GetStackOutput" in text and "AWS::CDK::Metadata" in text


def test_replayed_templates_are_byte_identical(assemblies: tuple[Path, Path]) -> None:
    results = assembly_compare.compare_assemblies(*assemblies)
    assert [result.verdict for result in results] == ["byte-identical"] * 3


def test_replay_keeps_stages_stack_names_tags_and_dependencies(
    assemblies: tuple[Path, Path],
) -> None:
    # The manifests (environments, stack names, termination protection, tags, stack
    # dependencies, the synthesizer's bootstrap properties) come out identical too.
    differing = assembly_compare.other_differences(*assemblies)
    assert not [name for name in differing if name.endswith("manifest.json")]
    assert differing["tree.json"] == "differs"  # flat: no construct hierarchy


def _copy(assembly: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(assembly, copy)
    return copy


def test_comparison_names_the_value_that_differs(
    assemblies: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = _copy(assemblies[0], tmp_path)
    path = next(copy.rglob("*Data*.template.json"))
    template = json.loads(path.read_text())
    template["Resources"]["Topic"]["Type"] = "AWS::SQS::Queue"
    path.write_text(json.dumps(template, indent=1))
    results = {
        r.template.rsplit("/", 1)[-1]: r
        for r in assembly_compare.compare_assemblies(*assemblies[:1], copy)
    }
    assert results[path.name].verdict == "differs"
    assert results[path.name].differences == ("/Resources/Topic/Type",)


def test_comparison_tells_reordered_keys_from_byte_identical(
    assemblies: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = _copy(assemblies[0], tmp_path)
    path = next(copy.rglob("*Data*.template.json"))
    path.write_text(json.dumps(json.loads(path.read_text()), indent=1, sort_keys=True))
    verdicts = {
        r.template.rsplit("/", 1)[-1]: r.verdict
        for r in assembly_compare.compare_assemblies(assemblies[0], copy)
    }
    assert verdicts[path.name] == "equal JSON"
    assert sorted(verdicts.values()).count("byte-identical") == 2


def test_comparison_reports_a_missing_template(
    assemblies: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = _copy(assemblies[0], tmp_path)
    next(copy.rglob("Tooling.template.json")).unlink()
    results = assembly_compare.compare_assemblies(assemblies[0], copy)
    assert [(r.template, r.verdict) for r in results if r.verdict != "byte-identical"] == [
        ("Tooling.template.json", "missing")
    ]


def _artifact(template: dict[str, Any], **properties: Any) -> floor_replay.StackArtifact:
    return floor_replay.StackArtifact(
        artifact_id="Bad",
        path="Bad",
        account="111111111111",
        region="eu-west-1",
        properties=properties,
        dependencies=[],
        template=template,
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            {"Resources": {}, "Hooks": {}},
            "stack Bad: template sections ['Hooks'] are not replayed (allowed: ",
        ),
        (
            {"Resources": {"My-Topic": {"Type": "AWS::SNS::Topic"}}},
            "logical id 'My-Topic': not alphanumeric",
        ),
        (
            {"Outputs": {"Out": {"Value": "x", "Key": "k"}}},
            "output Out: keys ['Key'] are not replayed",
        ),
    ],
)
def test_what_cannot_be_replayed_is_refused(template: dict[str, Any], message: str) -> None:
    with pytest.raises(floor_replay.ReplayError, match=f"^{re.escape(message)}"):
        floor_replay.replay_stack(cdk.App(), _artifact(template))


def test_a_plain_stack_template_is_replayed(tmp_path: Path) -> None:
    # the edge of the checks above: an alphanumeric id and known keys are taken
    stack = floor_replay.replay_stack(
        cdk.App(),
        _artifact(
            {
                "Resources": {"MyTopic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"Out": {"Value": "x"}},
            }
        ),
    )
    assert stack.node.try_find_child("MyTopic") is not None


def test_unknown_manifest_property_is_refused(
    assemblies: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = _copy(assemblies[0], tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["artifacts"]["Tooling"]["properties"]["stackPolicy"] = {}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        floor_replay.ReplayError,
        match=r"^stack Tooling: manifest properties \['stackPolicy'\] are not replayed",
    ):
        floor_replay.read_assembly(copy)


def test_replay_app_refuses_a_folder_without_an_assembly(tmp_path: Path) -> None:
    env = {**os.environ, "REPLAY_ASSEMBLY": str(tmp_path), "CDK_OUTDIR": str(tmp_path / "out")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replay_app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}: no manifest.json (expected a cdk.out cloud assembly)"
    )
    assert "Traceback" not in result.stderr
