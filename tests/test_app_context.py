"""app.py's context drops node stack traces (mlops/app_context.py): *.metadata.json loses the
creation stacks and annotation traces, and nothing else in the assembly changes (templates
with their AWS::CDK::Metadata, manifest, tree.json, acknowledgements); a finding still fails
synth and names its construct."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from cdk_nag import NIST80053R5Checks
from conftest import cdk_json_context, run_dev_training_app

from mlops.app_context import NO_NODE_STACK_TRACES
from mlops.nag import acknowledge_role_scoped_policies

ENV = cdk.Environment(account="123456789012", region="eu-west-1")
CREATION_STACK = "aws:cdk:creationStack"


def _synth(outdir: Path, extra: dict[str, object], late_policy: bool = False) -> None:
    """A stage with an L2 queue, a role whose inline policy is acknowledged (a trace CDK
    keeps), an info annotation, and AWS::CDK::Metadata (version reporting on, as in `cdk
    synth`). With late_policy, a policy added after the acknowledgement fails synth."""
    context = {**cdk_json_context(), "aws:cdk:version-reporting": True, **extra}
    app = cdk.App(outdir=str(outdir), context=context)
    cdk.Validations.of(app).add_plugins(NIST80053R5Checks(app))
    stage = cdk.Stage(app, "Place", env=ENV)
    stack = cdk.Stack(stage, "Work")
    queue = sqs.Queue(stack, "Jobs", enforce_ssl=True)
    role = iam.Role(stack, "Worker", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    queue.grant_send_messages(role)
    cdk.Annotations.of(queue).add_info("a note for whoever synthesizes")
    acknowledge_role_scoped_policies(stage)
    if late_policy:
        late = iam.Role(stack, "Late", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        queue.grant_consume_messages(late)
    app.synth()


def _metadata(outdir: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(outdir.rglob("*.metadata.json")):
        for construct, entries in json.loads(path.read_text()).items():
            found.setdefault(construct, []).extend(entries)
    return found


def _without_traces(metadata: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """What the app's context keeps: no creation stacks, annotations without their trace."""
    kept: dict[str, list[Any]] = {}
    for construct, entries in metadata.items():
        for entry in entries:
            if entry["type"] == CREATION_STACK:
                continue
            if entry["type"] in ("aws:cdk:info", "aws:cdk:warning", "aws:cdk:error"):
                entry = {k: v for k, v in entry.items() if k != "trace"}
            kept.setdefault(construct, []).append(entry)
    return kept


def _files(outdir: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(outdir)): path.read_bytes()
        for path in sorted(outdir.rglob("*"))
        if path.is_file() and not path.name.endswith(".metadata.json")
    }


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same app synthesized with CDK's defaults and with app.py's context."""
    default = tmp_path_factory.mktemp("with-traces")
    quiet = tmp_path_factory.mktemp("no-traces")
    _synth(default, {})
    _synth(quiet, dict(NO_NODE_STACK_TRACES))
    return default, quiet


def test_cdk_records_the_traces_by_default(both: tuple[Path, Path]) -> None:
    """The other side: without the context every resource carries a creation stack and the
    annotation its trace, so the keys below are the ones aws-cdk-lib reads."""
    metadata = _metadata(both[0])
    assert CREATION_STACK in {e["type"] for e in metadata["/Place/Work/Jobs/Resource"]}
    (info,) = [e for e in metadata["/Place/Work/Jobs"] if e["type"] == "aws:cdk:info"]
    assert info["trace"]


def test_the_apps_context_drops_only_the_traces(both: tuple[Path, Path]) -> None:
    default, quiet = both
    metadata = _metadata(quiet)
    types = {e["type"] for entries in metadata.values() for e in entries}
    assert CREATION_STACK not in types
    assert all("trace" not in e for e in metadata["/Place/Work/Jobs"])
    # Acknowledgements keep theirs; every other entry is as CDK writes it by default.
    acks = [e for e in metadata["/Place/Work/Worker/DefaultPolicy/Resource"] if "trace" in e]
    assert acks and all(e["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY for e in acks)
    assert metadata == _without_traces(_metadata(default))


def test_templates_manifest_and_tree_are_byte_identical(both: tuple[Path, Path]) -> None:
    default, quiet = both
    files = _files(quiet)
    assert "tree.json" in files and "manifest.json" in files
    [template] = [name for name in files if name.endswith(".template.json")]
    assert b"AWS::CDK::Metadata" in files[template]  # its Analytics string is compared too
    assert files == _files(default)


def test_a_finding_still_fails_synth_and_names_its_construct(tmp_path: Path) -> None:
    reports = []
    for name, extra in (("default", {}), ("quiet", dict(NO_NODE_STACK_TRACES))):
        with pytest.raises(RuntimeError, match="ValidationFailed"):
            _synth(tmp_path / name, extra, late_policy=True)
        report = json.loads((tmp_path / name / "validation-report.json").read_text())
        reports.append(
            sorted(
                (violation["ruleName"], construct["constructPath"])
                for plugin in report["pluginReports"]
                for violation in plugin["violations"]
                for construct in violation["violatingConstructs"]
            )
        )
    assert reports[0] == reports[1]
    assert ("NIST.800.53.R5-IAMNoInlinePolicy", "Place/Work/Late/DefaultPolicy/Resource") in (
        reports[1]
    )


def test_app_py_synthesizes_without_creation_stacks(tmp_path: Path) -> None:
    """app.py itself passes the context (the smallest real app: training-only dev)."""
    result = run_dev_training_app(
        [sys.executable, "app.py"],
        tmp_path,
        CDK_VALIDATION="false",  # CloudFormation's rules are not what this test is about
    )
    assert result.returncode == 0, result.stderr[-2000:]
    entries = [e for es in _metadata(tmp_path / "cdk.out").values() for e in es]
    types = {e["type"] for e in entries}
    assert "aws:cdk:logicalId" in types and CREATION_STACK not in types
    # No deprecated aws-cdk-lib API in our code: jsii warns on every synth otherwise.
    assert "is deprecated" not in result.stderr, result.stderr[-2000:]


def test_the_shared_context_cannot_be_changed_by_a_caller() -> None:
    """One caller (a test, say) cannot turn the traces back on for every later app: the
    context is read-only, and a copy of it is a plain dict the caller may change."""
    with pytest.raises(TypeError):
        NO_NODE_STACK_TRACES["aws:cdk:disable-stack-trace"] = False  # type: ignore[index]
    with pytest.raises(TypeError):
        del NO_NODE_STACK_TRACES["aws:cdk:disable-stack-trace"]  # type: ignore[attr-defined]
    assert not hasattr(NO_NODE_STACK_TRACES, "update")
    copy = dict(NO_NODE_STACK_TRACES)
    copy["aws:cdk:disable-stack-trace"] = False
    assert NO_NODE_STACK_TRACES == {
        "aws:cdk:disable-creation-stack-traces": True,
        "aws:cdk:disable-stack-trace": True,
    }
