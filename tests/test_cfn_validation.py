"""CDK's default CloudFormation rules, run once per distinct template (mlops/cfn_validation.py):
a finding fails synth whether the engine ran or the finding was replayed, templates and the
validation report are those of CDK's built-in path, and a changed input is validated again."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from conftest import cdk_json_context, run_dev_training_app

from mlops import cfn_validation
from mlops.cfn_validation import (
    CachedCloudFormationValidation,
    add_cached_cfn_validation,
    start_engine_if_cold,
    validation_cache_dir,
)
from mlops.nag import report_policy_violations

ACCOUNT = "123456789012"
ROOT = Path(__file__).resolve().parents[1]


def _app(
    outdir: Path,
    cache: Path | None,
    *,
    overrides: dict[str, object] | None = None,
    region: str = "us-east-1",
) -> tuple[cdk.App, CachedCloudFormationValidation | None]:
    """One stack with one bucket; cache None: CDK's built-in validation, as tests use it."""
    app = cdk.App(
        # The CLI turns version reporting on: the stack gets its AWS::CDK::Metadata.
        context={**cdk_json_context(), "aws:cdk:version-reporting": True},
        outdir=str(outdir),
        builtin_cloud_formation_validation=cache is None,
    )
    plugin = add_cached_cfn_validation(app, cache) if cache is not None else None
    stack = cdk.Stack(app, "Shop", env=cdk.Environment(account=ACCOUNT, region=region))
    bucket = s3.CfnBucket(stack, "Bucket")
    for path, value in (overrides or {}).items():
        bucket.add_property_override(path, value)
    return app, plugin


def _synth(
    outdir: Path, cache: Path | None, **kwargs: object
) -> CachedCloudFormationValidation | None:
    app, plugin = _app(outdir, cache, **kwargs)  # type: ignore[arg-type]
    app.synth()
    return plugin


def test_an_error_fails_synth_when_validated_and_when_replayed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    unknown_property = {"NoSuchProperty": "x"}  # F3002: not in the resource schema
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _synth(tmp_path / "first", cache, overrides=unknown_property)
    assert len(list(cache.glob("*.json"))) == 1  # the finding is recorded
    app, plugin = _app(tmp_path / "second", cache, overrides=unknown_property)
    assert plugin is not None
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*NoSuchProperty"):
        app.synth()
    assert plugin.validated == [] and len(plugin.replayed) == 1


def test_a_warning_is_reported_like_the_built_in_plugin_reports_it(tmp_path: Path) -> None:
    """W3030 (a value outside the schema's enum) is a warning: CDK writes it into the report
    and app.py's report_policy_violations fails synth on it (exit 1)."""
    bad_status = {"VersioningConfiguration.Status": "Sometimes"}
    _synth(tmp_path / "builtin", None, overrides=bad_status)
    cache = tmp_path / "cache"
    fresh = _synth(tmp_path / "fresh", cache, overrides=bad_status)
    replayed = _synth(tmp_path / "replayed", cache, overrides=bad_status)
    assert fresh is not None and len(fresh.validated) == 1
    assert replayed is not None and replayed.validated == [] and len(replayed.replayed) == 1
    expected = (tmp_path / "builtin" / "validation-report.json").read_text()
    assert "W3030" in expected
    for folder in ("fresh", "replayed"):
        assert (tmp_path / folder / "validation-report.json").read_text() == expected
        assert report_policy_violations(tmp_path / folder) == 1


def test_templates_are_byte_identical_to_the_built_in_path(tmp_path: Path) -> None:
    """CDK lists explicitly added plugins in AWS::CDK::Metadata; the cached one is added late
    so that the stack's metadata (and every other byte) stays as with the built-in plugin."""
    _synth(tmp_path / "builtin", None)
    _synth(tmp_path / "cached", tmp_path / "cache")
    template = "Shop.template.json"
    builtin = (tmp_path / "builtin" / template).read_text()
    assert "AWS::CDK::Metadata" in builtin
    assert (tmp_path / "cached" / template).read_text() == builtin
    report = "validation-report.json"
    assert (tmp_path / "cached" / report).read_text() == (tmp_path / "builtin" / report).read_text()


def test_a_clean_template_is_validated_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _synth(tmp_path / "a", cache)
    second = _synth(tmp_path / "b", cache)
    assert first is not None and len(first.validated) == 1 and first.replayed == []
    assert second is not None and second.validated == [] and len(second.replayed) == 1
    assert report_policy_violations(tmp_path / "b") == 0


@pytest.mark.parametrize(
    "change",
    [
        {"overrides": {"VersioningConfiguration.Status": "Enabled"}},  # the template's bytes
        {"region": "eu-west-1"},  # what the engine resolves pseudo parameters with
    ],
)
def test_a_changed_input_is_validated_again(tmp_path: Path, change: dict[str, object]) -> None:
    cache = tmp_path / "cache"
    _synth(tmp_path / "a", cache)
    again = _synth(tmp_path / "b", cache, **change)  # type: ignore[arg-type]
    assert again is not None and len(again.validated) == 1 and again.replayed == []


def test_an_unreadable_entry_is_validated_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _synth(tmp_path / "a", cache)
    [entry] = cache.glob("*.json")
    entry.write_text("{not json")
    again = _synth(tmp_path / "b", cache)
    assert again is not None and len(again.validated) == 1
    assert json.loads(entry.read_text())["violations"] == []  # rewritten whole


# app.py as `cdk synth` runs it (training-only dev: the smallest real app), with one more
# stack whose resource has a property CloudFormation does not know (nothing cdk-nag checks).
APP_WITH_A_BAD_TEMPLATE = textwrap.dedent(
    """
    import runpy, sys
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    import mlops.app_builder as builder

    build = builder.build_app

    def build_with_a_bad_template(app, *args, **kwargs):
        build(app, *args, **kwargs)
        stack = cdk.Stack(app, "Bad", env=cdk.Environment(account="123456789012", region="us-east-1"))
        cdk.CfnWaitConditionHandle(stack, "Handle").add_property_override("NoSuchProperty", "x")

    builder.build_app = build_with_a_bad_template
    sys.argv = ["app.py"]
    runpy.run_path("app.py", run_name="__main__")
    """
)


def test_a_cache_that_cannot_be_written_costs_no_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file where the cache folder should be: the finding still fails synth, one warning."""
    in_the_way = tmp_path / "cache"
    in_the_way.write_text("not a folder")
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*NoSuchProperty"):
        _synth(tmp_path / "out", in_the_way, overrides={"NoSuchProperty": "x"})
    plugin = _synth(tmp_path / "clean", in_the_way)  # and a clean template still passes
    assert plugin is not None and plugin.unwritable and len(plugin.validated) == 1
    plugin._write("another-template", [])  # a second template of the same synth: no warning
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 2  # one per synth, not one per template
    assert warnings[0].startswith(f"warning: validation cache {in_the_way} cannot be written")
    assert in_the_way.read_text() == "not a folder"


def test_app_py_fails_synth_on_a_template_cloudformation_would_refuse(tmp_path: Path) -> None:
    result = run_dev_training_app(
        [sys.executable, "-c", APP_WITH_A_BAD_TEMPLATE],
        tmp_path,
        MLOPS_VALIDATION_CACHE=str(tmp_path / "cache"),
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "F3002" in result.stderr and "Bad/Handle" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # The training stacks were validated (and recorded) too, not only the bad one.
    assert len(list((tmp_path / "cache").glob("*.json"))) >= 3


def test_the_engine_starts_early_only_when_the_cache_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cfn_validation, "_engine", None)  # restored after the test
    warm = tmp_path / "warm"
    warm.mkdir()
    (warm / "0123abcd.json").write_text("{}")  # one recorded template: taken as warm
    assert start_engine_if_cold(warm) is False
    assert cfn_validation._engine is None
    assert start_engine_if_cold(tmp_path / "missing") is True  # a clean clone
    started = cfn_validation._engine
    assert started is not None
    assert start_engine_if_cold(tmp_path / "missing") is True
    assert cfn_validation._engine is started  # still one engine per process
    monkeypatch.setattr(cfn_validation, "_engine", None)
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / "0123abcd.tmp").write_text("{")  # a write that never landed records nothing
    assert start_engine_if_cold(interrupted) is True
    assert cfn_validation._engine is not None


# app.py as `cdk synth` runs it, reporting whether the engine existed when the app's first
# construct was built (the rule packs are added first) and whether it exists at the end.
APP_REPORTING_THE_ENGINE = textwrap.dedent(
    """
    import atexit, runpy, sys
    import mlops.app_builder as builder
    import mlops.cfn_validation as validation

    add_rule_packs = builder.add_rule_packs

    def report_and_add(app):
        print(f"engine before constructs: {validation._engine is not None}")
        add_rule_packs(app)

    builder.add_rule_packs = report_and_add
    atexit.register(lambda: print(f"engine at exit: {validation._engine is not None}"))
    sys.argv = ["app.py"]
    runpy.run_path("app.py", run_name="__main__")
    """
)


def _report_engine(
    tmp_path: Path, cache: Path, context: dict[str, str] | None = None, **extra: str
) -> tuple[int, str]:
    result = run_dev_training_app(
        [sys.executable, "-c", APP_REPORTING_THE_ENGINE],
        tmp_path,
        context,
        MLOPS_VALIDATION_CACHE=str(cache),
        **extra,
    )
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result.returncode, result.stdout


def test_app_py_starts_the_engine_before_its_constructs_only_on_a_cold_cache(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    code, cold = _report_engine(tmp_path / "cold", cache)
    assert code == 0 and "engine before constructs: True" in cold
    # The second synth finds every template recorded: the engine never starts.
    code, warm = _report_engine(tmp_path / "warm", cache)
    assert code == 0
    assert "engine before constructs: False" in warm and "engine at exit: False" in warm


def test_app_py_does_not_start_the_engine_without_validation_or_on_a_config_error(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty-cache"
    code, unvalidated = _report_engine(tmp_path / "off", empty, CDK_VALIDATION="false")
    assert code == 0 and "engine before constructs: False" in unvalidated
    assert "engine at exit: False" in unvalidated
    # The sandbox needs the CLI's identity: a config error before any construct.
    code, refused = _report_engine(tmp_path / "sandbox", empty, {"env": "sandbox"})
    assert code == 2 and "engine at exit: False" in refused


def test_a_write_that_fails_midway_leaves_no_half_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills between writing the entry and renaming it into place."""

    def disk_full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*NoSuchProperty"):
        _synth(tmp_path / "out", cache, overrides={"NoSuchProperty": "x"})
    assert list(cache.iterdir()) == []  # neither an entry nor its temporary file
    assert "No space left on device" in capsys.readouterr().err


def test_the_cache_folder_is_the_default_unless_one_is_named(tmp_path: Path) -> None:
    default = tmp_path / ".cache" / "cfn-validate"
    assert validation_cache_dir({}, tmp_path) == default
    assert validation_cache_dir({"MLOPS_VALIDATION_CACHE": ""}, tmp_path) == default
    named = {"MLOPS_VALIDATION_CACHE": "/elsewhere/cache"}
    assert validation_cache_dir(named, tmp_path) == Path("/elsewhere/cache")


# app.py as the CLI runs it, with an engine that crashes.
APP_WITH_A_CRASHING_ENGINE = textwrap.dedent(
    """
    import runpy, sys
    import mlops.cfn_validation as validation

    def crashing_engine():
        raise RuntimeError("engine crashed")

    validation._shared_engine = crashing_engine
    sys.argv = ["app.py"]
    runpy.run_path("app.py", run_name="__main__")
    """
)


@pytest.mark.parametrize("default_rules_flag", [True, False])
def test_app_py_fails_synth_when_validation_crashed(
    tmp_path: Path, default_rules_flag: bool
) -> None:
    """With the flag off CDK drops its record of the crash from the report; app.py still
    knows from its plugin that nothing was checked."""
    result = run_dev_training_app(
        [sys.executable, "-c", APP_WITH_A_CRASHING_ENGINE],
        tmp_path,
        {
            "@aws-cdk/core:validateAgainstDefaultRules": default_rules_flag,  # type: ignore[dict-item]
            "@aws-cdk/core:failSynthOnValidationErrors": False,  # type: ignore[dict-item]
        },
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "did not finish" in line]
    assert lines == [
        "error: CloudFormation Validate did not finish and checked nothing: "
        + ("Validation plugin 'CloudFormation Validate' failed: " if default_rules_flag else "")
        + ("engine crashed" if default_rules_flag else "RuntimeError: engine crashed")
    ], result.stderr[-2000:]
