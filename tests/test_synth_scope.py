"""What synth builds once per process, and what `-c training-only=true` leaves out."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from conftest import stack_templates, synth_app

from mlops.app_builder import AppOptions
from mlops.config import PlatformConfig
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
