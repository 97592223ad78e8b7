"""bench/bench_rollback.py reads the deployed alarm shape from mlops/alarm_shape.py, the plain
module the construct reads too: its design figures follow the construct, and importing it does
not start aws_cdk's jsii runtime (node) the way importing the construct does."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops import alarm_shape

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "bench_rollback", ROOT / "bench" / "bench_rollback.py"
)
assert _spec is not None and _spec.loader is not None
bench_rollback = importlib.util.module_from_spec(_spec)
sys.modules["bench_rollback"] = bench_rollback  # its dataclasses look their module up
_spec.loader.exec_module(bench_rollback)


def _cdk_modules_after_importing(module: str) -> list[str]:
    """aws_cdk and jsii modules loaded by importing `module` in a fresh interpreter."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
        f"import {module}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aws_cdk', 'jsii'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("module", ["bench_rollback", "mlops.local.simulate.endpoint"])
def test_reading_the_alarm_shape_does_not_start_aws_cdk(module: str) -> None:
    assert _cdk_modules_after_importing(module) == []


def test_the_check_sees_a_module_that_starts_aws_cdk() -> None:
    """The same check on the construct: it does load aws_cdk, so the check can fail."""
    assert "aws_cdk" in _cdk_modules_after_importing("mlops.constructs.endpoint_alarms")


def test_the_deployed_designs_are_the_constructs_alarms() -> None:
    from mlops.constructs import endpoint_alarms

    assert endpoint_alarms.PERIOD.to_seconds() == alarm_shape.PERIOD_SECONDS
    assert endpoint_alarms.FAST_PERIOD.to_seconds() == alarm_shape.FAST_PERIOD_SECONDS
    deployed = {
        (d.period_s, d.evaluation_periods, d.datapoints_to_alarm)
        for d in bench_rollback.DESIGNS
        if "deployed" in d.name
    }
    assert deployed == {
        (
            alarm_shape.PERIOD_SECONDS,
            alarm_shape.EVALUATION_PERIODS,
            alarm_shape.DATAPOINTS_TO_ALARM,
        ),
        (
            alarm_shape.FAST_PERIOD_SECONDS,
            alarm_shape.FAST_DATAPOINTS,
            alarm_shape.FAST_DATAPOINTS,
        ),
    }


def test_the_bench_prints_its_figures_and_not_the_handlers_metric_lines() -> None:
    """`make bench` runs the handler, whose Metrics print one EMF JSON line per event to
    stdout (tests/test_rollback.py reads them there): the bench keeps them out of its output
    and prints every scenario's figures."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_rollback.py"), "--events", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.lstrip().startswith("{") or '"_aws"' in line]
    for scenario in (
        "rollback (update+notify+reject)",
        "duplicate event (no-op)",
        "other endpoint's alarm (ignored)",
    ):
        (row,) = [line for line in lines if line.strip().startswith(scenario)]
        assert len(row.split()) == len(scenario.split()) + 3  # median, p95, max (ms)
    assert any(line.strip().startswith("total") for line in lines)
