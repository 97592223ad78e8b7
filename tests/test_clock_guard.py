"""The future-clock guard itself: a test that only passes near the day it was written passes
without the guard and fails with it; a bad offset is one usage error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# Passes only within a day of the moment this file was written (its mtime, set by the real
# clock): the pattern of the retrain gate test that broke CI three days after it was written.
DATE_BOUND_TEST = """
import os
from datetime import UTC, datetime, timedelta

def test_written_recently():
    written = datetime.fromtimestamp(os.stat(__file__).st_mtime, UTC)
    assert datetime.now(UTC) - written < timedelta(days=1)
"""


def _pytest(folder: Path, *args: str, offset: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_TEST_CLOCK_OFFSET_DAYS"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    if offset is not None:
        env["MLOPS_TEST_CLOCK_OFFSET_DAYS"] = offset
    command = [sys.executable, "-m", "pytest", "-p", "clock_guard", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, "--rootdir", str(folder), *args, str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture()
def date_bound(tmp_path: Path) -> Path:
    (tmp_path / "test_date_bound.py").write_text(DATE_BOUND_TEST)
    return tmp_path


def test_a_date_bound_test_passes_today_and_fails_under_the_guard(date_bound: Path) -> None:
    today = _pytest(date_bound, offset=None)
    assert today.returncode == 0, today.stdout + today.stderr
    future = _pytest(date_bound, offset="3653")
    assert future.returncode == 1, future.stdout + future.stderr
    assert "1 failed" in future.stdout
    assert "clock guard: the clock reads" in future.stdout  # the header says what it did


def test_the_option_moves_the_clock_as_the_variable_does(date_bound: Path) -> None:
    result = _pytest(date_bound, "--clock-offset-days", "2", offset=None)
    assert result.returncode == 1, result.stdout + result.stderr


@pytest.mark.parametrize("offset", ["soon", "-5"])
def test_a_bad_offset_is_one_usage_error(date_bound: Path, offset: str) -> None:
    result = _pytest(date_bound, offset=offset)
    assert result.returncode == 4  # pytest's usage error
    assert f"clock offset '{offset}'" in result.stderr
