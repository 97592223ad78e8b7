"""Runs started ahead of their data's landing are adopted only when the registry they ran on
is still the registry (tests with a run that registers like RegisterModel does)."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

from mlops.local.registry import LocalRegistry
from mlops.local.runner import RunSummary
from mlops.local.simulate.ahead import RunsAhead, registry_state


def _archive(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "xgboost-model").write_text("model")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "model" / "xgboost-model", arcname="xgboost-model")
    return archive


def _registering_run(
    archive: Path, seen: list[list[tuple[str, int, str]]]
) -> Callable[[Path], RunSummary]:
    def run(registry_dir: Path) -> RunSummary:
        registry = LocalRegistry(registry_dir)
        seen.append(registry_state(registry))  # what FindIncumbent would have listed
        package = registry.register(group="g", model_data=archive, status="Approved")
        return RunSummary("Succeeded", "p", "e", "", 1.0, [], {"version": package.version}, None)

    return run


def test_a_run_ahead_on_an_unchanged_registry_is_adopted(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    registry = LocalRegistry(tmp_path / "registry")
    registry.register(group="g", model_data=archive, status="Approved")
    ahead = RunsAhead(registry, tmp_path / "ahead")
    seen: list[list[tuple[str, int, str]]] = []
    try:
        ahead.start(7, _registering_run(archive, seen))
        assert registry_state(registry) == [("g", 1, "Approved")]  # nothing registered yet
        outcome, why = ahead.take(7)
    finally:
        ahead.close()
    assert outcome is not None and outcome.summary.registered_model == {"version": 2}
    assert why.startswith("adopted")
    assert seen == [[("g", 1, "Approved")]]
    assert registry_state(registry) == [("g", 1, "Approved"), ("g", 2, "Approved")]
    assert Path(registry.get("g", 2).model_data_path).read_bytes() == archive.read_bytes()
    assert ahead.take(7) == (None, "no run ahead on this data")


def test_a_rollback_while_it_ran_discards_the_run_ahead(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    registry = LocalRegistry(tmp_path / "registry")
    registry.register(group="g", model_data=archive, status="Approved")
    ahead = RunsAhead(registry, tmp_path / "ahead")
    try:
        ahead.start(7, _registering_run(archive, []))
        registry.set_status("g", 1, "Rejected", "rolled back")  # the incumbent it saw is gone
        outcome, why = ahead.take(7)
    finally:
        ahead.close()
    assert outcome is None and "registry changed" in why
    assert registry_state(registry) == [("g", 1, "Rejected")]  # its v2 stays in its copy
