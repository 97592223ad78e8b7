"""What synth builds once per process, and what `-c training-only=true` leaves out."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DEFAULT_RELEASES, run_dev_training_app, stack_templates, synth_app

from mlops.app_builder import AppOptions, context_flag
from mlops.config import ConfigError, PlatformConfig
from mlops.constructs.asset_cache import built_once


def _counting_build(calls: list[Path], out: Path) -> Callable[[Path], Path]:
    def build(source: Path) -> Path:
        calls.append(source)
        target = out / f"build-{len(calls)}"
        target.write_text((source / "a.py").read_text())
        return target

    return build


def _source_and_build(tmp_path: Path) -> tuple[Path, list[Path], Callable[[Path], Path]]:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.py").write_text("x = 1\n")
    calls: list[Path] = []
    return source, calls, _counting_build(calls, tmp_path)


def test_an_unchanged_source_is_built_once(tmp_path: Path) -> None:
    source, calls, build = _source_and_build(tmp_path)
    first = built_once("test-unchanged", source, build)
    assert built_once("test-unchanged", source, build) == first
    assert len(calls) == 1
    # Another kind of build of the same folder is its own build.
    built_once("test-other-kind", source, build)
    assert len(calls) == 2


def test_a_changed_source_is_built_again(tmp_path: Path) -> None:
    source, calls, build = _source_and_build(tmp_path)
    first = built_once("test-changed", source, build)
    (source / "a.py").write_text("x = 22\n")  # another size
    second = built_once("test-changed", source, build)
    assert second != first and second.read_text() == "x = 22\n"
    stat = (source / "a.py").stat()  # same size, newer time
    (source / "a.py").write_text("x = 33\n")
    os.utime(source / "a.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert built_once("test-changed", source, build).read_text() == "x = 33\n"
    (source / "b.py").write_text("")  # a new file
    built_once("test-changed", source, build)
    assert len(calls) == 4


def test_training_only_builds_the_training_hub_and_the_same_template(
    tmp_path: Path, platform: PlatformConfig, assembly_dir: Path
) -> None:
    synth_app(platform, tmp_path, AppOptions(only_environment="dev", training_only=True))
    scoped = stack_templates(tmp_path)
    assert sorted(scoped) == ["dev-us-east-1/Data", "dev-us-east-1/Training"]
    # `mlops local run` reads exactly the template `make synth` deploys.
    # Read from disk: other tests may edit the session's parsed `templates` in place.
    full = stack_templates(assembly_dir)["dev-us-east-1/Training"]
    assert scoped["dev-us-east-1/Training"] == full


def test_without_training_only_the_stage_keeps_serving(
    tmp_path: Path, platform: PlatformConfig
) -> None:
    synth_app(platform, tmp_path, AppOptions(only_environment="dev"))
    assert "dev-us-east-1/Serving" in stack_templates(tmp_path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("false", False), (False, False), ("true", True), (True, True)],
)
def test_a_context_switch_is_true_or_false(value: object, expected: bool) -> None:
    assert context_flag("training-only", value) is expected


@pytest.mark.parametrize("value", ["yes", "True", "1", "", 1])
def test_any_other_context_switch_value_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match=rf"^-c training-only={value}: must be true or false$"):
        context_flag("training-only", value)


def test_app_py_refuses_a_misspelt_switch_in_one_line_before_building(tmp_path: Path) -> None:
    result = run_dev_training_app(
        [sys.executable, "app.py"], tmp_path, {"training-only": "yes"}, CDK_VALIDATION="false"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "error: -c training-only=yes: must be true or false"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cdk.out").exists() or not any((tmp_path / "cdk.out").iterdir())


def test_app_py_refuses_an_empty_environment_name_in_one_line(tmp_path: Path) -> None:
    result = run_dev_training_app(
        [sys.executable, "app.py"], tmp_path, {"env": ""}, CDK_VALIDATION="false"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "error: -c env=: unknown environment (allowed: dev, staging, prod, sandbox)"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("switch", "refused"),
    [
        ({}, True),
        ({"allow-prod-without-model": True}, False),
        ({"allow-prod-without-model": "true"}, False),
    ],
)
def test_app_py_takes_a_switch_committed_to_cdk_json_as_a_json_boolean(
    tmp_path: Path, switch: dict[str, object], refused: bool
) -> None:
    """README's first deployment commits `"allow-prod-without-model": true` to cdk.json: CDK
    passes it as a JSON boolean, not the string -c gives."""
    import yaml

    releases = yaml.safe_load(DEFAULT_RELEASES.read_text())
    releases["prod"] = {"current": None, "previous": None}
    manifest = tmp_path / "releases.yaml"
    manifest.write_text(yaml.safe_dump(releases))
    result = run_dev_training_app(
        [sys.executable, "app.py"],
        tmp_path,
        {"env": "prod", **switch},  # training-only: prod has no training stage, nothing built
        CDK_VALIDATION="false",
        MLOPS_RELEASES=str(manifest),
    )
    assert result.returncode == (2 if refused else 0), result.stderr[-2000:]
    assert ("prod.current: no model pinned" in result.stderr) is refused
