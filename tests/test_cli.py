"""The mlops command: argument mistakes and the local drift baseline lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops import cli
from mlops.local.registry import LocalRegistry


def _register(registry: LocalRegistry, tmp_path: Path, group: str, baseline: str | None) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"model")
    files = {}
    if baseline is not None:
        path = tmp_path / f"{group}-{baseline}.json"
        path.write_text(baseline)
        files[cli.BASELINE_METRIC] = path
    registry.register(
        group=group,
        model_data=model,
        status="Approved",
        image="img",
        metrics={},
        metric_files=files,
    )


def test_local_drift_takes_the_newest_registered_baseline(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / "registry")
    _register(registry, tmp_path, "group-b", "first")
    _register(registry, tmp_path, "group-a", "second")  # newer, though earlier by name
    _register(registry, tmp_path, "group-a", None)  # newest, but without a baseline
    assert cli._latest_baseline(tmp_path / "registry").read_text() == "second"


def test_local_drift_without_any_registered_model_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["local", "drift", "--registry", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: no registered model with a baseline") and err.count("\n") == 1


def test_local_run_refuses_a_data_folder_without_the_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["local", "run", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "has no flights.csv (or flights.csv.zip)" in capsys.readouterr().err


def test_run_folders_are_named_from_the_cli_clock_in_utc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timedelta, timezone

    from helpers import bundled_data_dir

    from mlops.local import run_local as run_local_module
    from mlops.local.runner import RunSummary

    moment = datetime(2026, 11, 26, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    monkeypatch.setattr(cli, "clock", lambda: moment)
    monkeypatch.setattr(cli, "DEFAULT_RUNS", tmp_path / "runs")
    seen: dict[str, object] = {}

    def fake_run_local(root, data, out, registry, env, *, parameters, clock):  # type: ignore[no-untyped-def]
        seen.update(out=out, clock=clock, parameters=parameters)
        return RunSummary(
            status="Succeeded",
            pipeline="p",
            execution_id="e",
            started_at="",
            seconds=0.0,
            steps=[],
            registered_model=None,
            failure_reason=None,
        )

    monkeypatch.setattr(run_local_module, "run_local", fake_run_local)
    assert cli.main(["local", "run", "--data", str(bundled_data_dir())]) == 0
    assert seen["out"] == tmp_path / "runs" / "run-20261126T120005Z"
    assert seen["clock"] is cli.clock  # the registry and the run read the same clock
