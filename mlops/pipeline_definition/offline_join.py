"""The point-in-time join of the training data, as one SQL text for Athena (Trino) and DuckDB.

Preprocess's input is this query's result (a ProcessingInput DatasetDefinition with an
AthenaDatasetDefinition): in AWS Athena runs it over the Glue tables of the feature groups'
offline stores and the raw flights table; locally the runner runs the very same text in DuckDB
over the local offline store (mlops/local/athena.py).

For every raw flight:
- weather: the newest record of its origin whose event time (observed_at, the hour's label +
  feature_schema.WEATHER_OBSERVATION_DELAY_MINUTES) is at or before the scheduled departure
  and at most feature_schema.WEATHER_MAX_AGE_HOURS older (pandas merge_asof, direction backward,
  exact matches allowed, tolerance of that many hours: the join preprocess used to run);
- plane: the newest record of its tail number with registered_at at or before departure; the
  age is the record's age plus the years from its event time to the flight's year.
Offline-store rows are first collapsed to the latest write per record id and event time (the
service appends on every PutRecord: re-ingestion writes the same record again), and a record
whose latest write is a delete (is_deleted) is left out, as the Feature Store docs' own
"latest snapshot" query does.

Portable by construction, no engine-specific syntax: Trino has no ASOF JOIN, so the as-of
match is a bounded equi-join on (origin, observation hour) with candidate hours 0..N back from
departure, then row_number() per flight. Every function used (split_part, substr, lpad, replace,
CAST, date_diff('hour', ...), INTERVAL 'n' HOUR, row_number) has the same meaning in both.
Event times are ISO 8601 strings (the feature groups' String event-time features), so string
order is time order; the scheduled departure comes from the raw table's time_hour (the UTC
hour of departure) plus the minutes of sched_dep_time. The raw flights table's location is
the raw/ prefix, which also holds weather.csv and planes.csv: only rows of files named
*flights.csv count (Athena's "$path" pseudo-column; the local catalog provides it too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline_steps import feature_schema

# The Athena query string limit (AthenaDatasetDefinition.QueryString: 1 to 4096 characters).
MAX_QUERY_LENGTH = 4096
# Raw flight columns preprocess needs, then the joined feature columns, in output order.
FLIGHT_COLUMNS = (
    "year",
    "month",
    "day",
    "sched_dep_time",
    "arr_delay",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "distance",
)
WEATHER_COLUMNS = tuple(f.name for f in feature_schema.features_of_group("weather"))
JOINED_COLUMNS = (
    *FLIGHT_COLUMNS,
    "departure",
    "observed_at",
    *WEATHER_COLUMNS,
    "plane_age",
    "seats",
)
# Glue table of the raw flights CSV: (column, Glue/Hive type), in the file's column order.
RAW_FLIGHT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("year", "int"),
    ("month", "int"),
    ("day", "int"),
    ("dep_time", "int"),
    ("sched_dep_time", "int"),
    ("dep_delay", "double"),
    ("arr_time", "int"),
    ("sched_arr_time", "int"),
    ("arr_delay", "double"),
    ("carrier", "string"),
    ("flight", "int"),
    ("tailnum", "string"),
    ("origin", "string"),
    ("dest", "string"),
    ("air_time", "double"),
    ("distance", "double"),
    ("hour", "int"),
    ("minute", "int"),
    ("time_hour", "string"),
)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")


@dataclass(frozen=True)
class OfflineTables:
    """Where the query reads: one Glue database holding the two offline-store tables (names
    pinned by the feature groups' DataCatalogConfig) and the raw flights table."""

    database: str
    weather: str = "weather"
    plane: str = "plane"
    flights: str = "raw_flights"
    catalog: str = "AwsDataCatalog"

    def __post_init__(self) -> None:
        for what in ("database", "weather", "plane", "flights"):
            value = getattr(self, what)
            if not _IDENTIFIER.match(value):
                raise ValueError(
                    f"offline tables: {what} {value!r} is not a Glue name (allowed: lowercase "
                    "letters, digits and _, starting with a letter or _)"
                )


def join_query(tables: OfflineTables) -> str:
    """The SQL text (see the module docstring); deterministic for the same tables."""
    hours = feature_schema.WEATHER_MAX_AGE_HOURS
    # Observations at most `hours` old fall in the departure's own hour or the `hours`
    # hours before it: those are the candidate hours of the equi-join.
    back = ", ".join(f"({n})" for n in range(hours + 1))
    weather = ", ".join(WEATHER_COLUMNS)
    picked_weather = ", ".join(f"w.{c}" for c in WEATHER_COLUMNS)
    flight_key = "f.year, f.month, f.day, f.carrier, f.flight, f.origin, f.sched_dep_time"
    epoch = "TIMESTAMP '1970-01-01 00:00:00'"
    query = f"""WITH weather_latest AS (
SELECT split_part(weather_id, '#', 1) AS origin, observed_at,
CAST(replace(replace(observed_at, 'T', ' '), 'Z', '') AS timestamp) AS observed,
{weather}, is_deleted,
row_number() OVER (PARTITION BY weather_id, observed_at
ORDER BY write_time DESC, api_invocation_time DESC) AS version
FROM {tables.weather}
), plane_latest AS (
SELECT tailnum, registered_at, plane_age, seats, is_deleted,
row_number() OVER (PARTITION BY tailnum, registered_at
ORDER BY write_time DESC, api_invocation_time DESC) AS version
FROM {tables.plane}
), flights AS (
SELECT {", ".join(FLIGHT_COLUMNS)},
substr(time_hour, 1, 14) || lpad(CAST(sched_dep_time % 100 AS varchar), 2, '0') || ':00Z'
AS departure
FROM {tables.flights} WHERE "$path" LIKE '%flights.csv'
), timed AS (
SELECT *, CAST(replace(replace(departure, 'T', ' '), 'Z', '') AS timestamp) AS departs
FROM flights
), with_weather AS (
SELECT f.*, w.observed_at, {picked_weather},
row_number() OVER (PARTITION BY {flight_key}
ORDER BY w.observed DESC NULLS LAST) AS pick
FROM timed f
CROSS JOIN (VALUES {back}) AS back (hours)
LEFT JOIN weather_latest w ON w.version = 1 AND NOT w.is_deleted AND w.origin = f.origin
AND date_diff('hour', {epoch}, w.observed)
= date_diff('hour', {epoch}, f.departs) - back.hours
AND w.observed <= f.departs AND w.observed >= f.departs - INTERVAL '{hours}' HOUR
), with_plane AS (
SELECT f.*, p.plane_age + (f.year - CAST(substr(p.registered_at, 1, 4) AS integer))
AS joined_plane_age, p.seats,
row_number() OVER (PARTITION BY {flight_key}
ORDER BY p.registered_at DESC NULLS LAST) AS plane_pick
FROM with_weather f
LEFT JOIN plane_latest p ON p.version = 1 AND NOT p.is_deleted AND p.tailnum = f.tailnum
AND p.registered_at <= f.departure
WHERE f.pick = 1
)
SELECT {", ".join(JOINED_COLUMNS[:-2])}, joined_plane_age AS plane_age, seats
FROM with_plane WHERE plane_pick = 1"""
    if len(query) > MAX_QUERY_LENGTH:
        raise ValueError(
            f"the offline-store join query is {len(query)} characters; Athena dataset "
            f"definitions allow at most {MAX_QUERY_LENGTH}"
        )
    return query
