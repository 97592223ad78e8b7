"""The replay's time arithmetic: a schedule expression's period, and a day's distinct times.
(Moved out of replay.py whole.)"""

from __future__ import annotations

import datetime as dt
import re

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_HOURS = {"minute": 1 / 60, "hour": 1, "day": 24}


def rate_hours(schedule: str) -> float | None:
    match = _RATE.match(schedule)
    if not match:
        return None  # cron(...): not replayed
    return int(match.group(1)) * _HOURS[match.group(2).rstrip("s")]


def sorted_times(*times: dt.datetime) -> list[dt.datetime]:
    """The distinct times among `times` before the last one (the next day), in order."""
    limit = times[-1]
    return sorted({t for t in times[:-1] if t <= limit})
