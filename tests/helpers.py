"""Plain helpers shared by several test modules (not fixtures, so any test can call them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# The moment tests pretend it is; code under test reads it through the clock it is given.
TEST_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class TickingClock:
    """A clock that reads `start` first and `step` later at every further reading, so the
    order of events is fixed and their times are known exactly."""

    def __init__(self, start: datetime = TEST_NOW, step: timedelta = timedelta(seconds=1)):
        self.next = start
        self.step = step
        self.readings: list[datetime] = []

    def __call__(self) -> datetime:
        moment, self.next = self.next, self.next + self.step
        self.readings.append(moment)
        return moment
