"""Issue 12's join minimums end to end: config/environments.yaml -> synth -> the pipeline
definition's MinWeatherMatch/MinPlaneMatch parameters -> Preprocess's arguments, run by the
local runner on January of the bundled data up to Preprocess (nothing is trained).

January's flights find their plane about 85% of the time: a configured minimum of 90% makes
Preprocess refuse the data with one line; the default 70% passes, and so does the stricter
synthesized pipeline when an operator lowers the minimum for one execution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import TickingClock
from step_fixtures import write_raw_slice

from mlops.app_builder import AppOptions
from mlops.config import parse_config
from mlops.local.definition_source import load_definition_from_assembly
from mlops.local.run_local import run_local
from mlops.local.runner import LocalRunError, RunSummary
from tests.conftest import DEFAULT_CONFIG, ROOT, synth_app

JANUARY = {"TrainEnd": "2013-01-20", "ValidationEnd": "2013-01-25", "TestEnd": "2013-01-31"}
STRICT_PLANE_MATCH = 0.9


@pytest.fixture(scope="module")
def january(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_raw_slice(tmp_path_factory.mktemp("january") / "raw", (1,))


@pytest.fixture(scope="module")
def strict_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev's training stage alone, synthesized from the committed config with a stricter
    plane minimum: what `mlops local run` reads."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["environments"]["dev"]["training"]["min_plane_match"] = STRICT_PLANE_MATCH
    platform = parse_config(yaml.safe_dump(data), "strict.yaml")
    outdir = tmp_path_factory.mktemp("strict-cdk.out")
    options = AppOptions(only_environment="dev", training_only=True, with_delivery_pipeline=False)
    synth_app(platform, outdir, options)
    return outdir


def _run_to_preprocess(
    cdk_out: Path, data: Path, out: Path, extra: dict[str, Any] | None = None
) -> RunSummary:
    return run_local(
        ROOT,
        data,
        out / "run",
        out / "registry",
        "dev",
        parameters={**JANUARY, **(extra or {})},
        progress=lambda _line: None,
        cdk_out=cdk_out,
        clock=TickingClock(),
        stop_after="Preprocess",
    )


def _default(cdk_out: Path, name: str) -> Any:
    definition, _ = load_definition_from_assembly(cdk_out, "dev")
    return next(p["DefaultValue"] for p in definition["Parameters"] if p["Name"] == name)


def test_a_stricter_configured_minimum_refuses_the_bundled_data_in_one_line(
    strict_assembly: Path, january: Path, tmp_path: Path
) -> None:
    assert _default(strict_assembly, "MinPlaneMatch") == STRICT_PLANE_MATCH
    summary = _run_to_preprocess(strict_assembly, january, tmp_path)
    assert summary.status == "Failed" and summary.failed_step == "Preprocess"
    reason = summary.failure_reason or ""
    assert reason.startswith("step Preprocess failed: train split: only 8"), reason
    assert "flights found their plane (minimum 90.0%)" in reason
    assert "MinPlaneMatch" in reason and "\n" not in reason
    statuses = {s.name: s.status for s in summary.steps}
    assert statuses["ValidateData"] == "Succeeded" and statuses["Train"] == "NotStarted"


def test_the_default_minimum_passes_the_bundled_data(
    assembly_dir: Path, january: Path, tmp_path: Path
) -> None:
    assert _default(assembly_dir, "MinPlaneMatch") == 0.7
    summary = _run_to_preprocess(assembly_dir, january, tmp_path)
    assert summary.status == "Stopped", summary.failure_reason
    statuses = {s.name: s.status for s in summary.steps}
    assert statuses["Preprocess"] == "Succeeded" and statuses["Train"] == "NotStarted"


def test_an_operator_lowers_the_minimum_for_one_execution(
    strict_assembly: Path, january: Path, tmp_path: Path
) -> None:
    summary = _run_to_preprocess(strict_assembly, january, tmp_path, {"MinPlaneMatch": 0.8})
    assert summary.status == "Stopped", summary.failure_reason
    assert summary.parameters["MinPlaneMatch"] == 0.8


def test_stop_after_names_a_step_of_the_definition(
    assembly_dir: Path, january: Path, tmp_path: Path
) -> None:
    with pytest.raises(LocalRunError, match=r"stop_after: no step 'Preprocesss' \(steps: "):
        run_local(
            ROOT,
            january,
            tmp_path / "run",
            tmp_path / "registry",
            "dev",
            cdk_out=assembly_dir,
            progress=lambda _line: None,
            stop_after="Preprocesss",
        )
