"""The future-clock guard: run the tests with the clock moved ahead, so a test that only
passes near the day it was written fails today instead of on some later day in CI.

Opt in with `--clock-offset-days N` or `MLOPS_TEST_CLOCK_OFFSET_DAYS=N` (`make test-future`
uses ten years). Every clock this process reads moves (datetime.now, time.time, date.today,
time.gmtime ...) and keeps ticking; monotonic timers (perf_counter) do not, nor do
subprocesses, which read the real clock. Loaded by conftest.py; a plain plugin module so a
test can load it into a pytest of its own (`-p clock_guard`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

ENV_VAR = "MLOPS_TEST_CLOCK_OFFSET_DAYS"
OPTION = "--clock-offset-days"
_TRAVELLER = pytest.StashKey[Any]()
_ARRIVAL = pytest.StashKey[datetime]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        default=None,
        metavar="DAYS",
        help=f"run with the clock moved DAYS days ahead (default: ${ENV_VAR}, else 0)",
    )


def offset_days(raw: str | None) -> float:
    """The offset asked for; one clear line for anything that is not a number of days."""
    if raw is None or raw.strip() == "":
        return 0.0
    try:
        days = float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"clock offset {raw!r} is not a number of days (allowed: e.g. 3653)"
        ) from None
    if days < 0:
        raise pytest.UsageError(f"clock offset {raw!r} is negative (allowed: 0 or more days)")
    return days


def pytest_configure(config: pytest.Config) -> None:
    days = offset_days(config.getoption(OPTION) or os.environ.get(ENV_VAR))
    if not days:
        return
    import time_machine  # only needed when the guard is on

    arrival = datetime.now(UTC) + timedelta(days=days)
    traveller = time_machine.travel(arrival, tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller
    config.stash[_ARRIVAL] = arrival


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    arrival = config.stash.get(_ARRIVAL, None)
    if arrival is None:
        return None
    return f"clock guard: the clock reads {arrival:%Y-%m-%d %H:%M} UTC (moved ahead)"
