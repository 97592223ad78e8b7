"""The flight features from the raw tables, in pandas: build_features() joins each flight
with the weather at its origin known at departure (merge_asof) and with its plane. It is the
reference the offline-store join is tested against, and what the local drift report and the
traffic simulation use on raw tables. Moved out of preprocess.py whole; preprocess.py
re-exports every name, and the step-script archive carries this file with the others.
"""

from __future__ import annotations

import feature_schema
import numpy as np
import pandas as pd
import step_io

TIMEZONE = "America/New_York"
# An observation older than this is no longer "the weather at departure": leave it missing.
WEATHER_TOLERANCE = pd.Timedelta(hours=feature_schema.WEATHER_MAX_AGE_HOURS)
WEATHER_OBSERVATION_DELAY = pd.Timedelta(minutes=feature_schema.WEATHER_OBSERVATION_DELAY_MINUTES)
WEATHER_COLUMNS = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib")


def scheduled_departure(flights: pd.DataFrame) -> pd.Series:
    """Scheduled departure as a UTC timestamp, from the local year/month/day/sched_dep_time."""
    parts = pd.DataFrame(
        {
            "year": flights["year"],
            "month": flights["month"],
            "day": flights["day"],
            "hour": flights["sched_dep_time"] // 100,
            "minute": flights["sched_dep_time"] % 100,
        },
        index=flights.index,
    )
    local = pd.to_datetime(parts, errors="coerce")
    bad = int(local.isna().sum())
    if bad:
        raise step_io.StepError(
            f"flights: {bad} rows have no valid year/month/day/sched_dep_time "
            "(run the ValidateData step first)"
        )
    # DST: a time in the skipped spring hour moves forward; a repeated autumn hour is
    # taken as the first (daylight-saving) occurrence.
    localized = local.dt.tz_localize(
        TIMEZONE, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
    )
    return localized.dt.tz_convert("UTC")


def label_flights(flights: pd.DataFrame) -> pd.DataFrame:
    """Drop cancelled/diverted flights (no arr_delay) and add the label and time columns."""
    flown = flights.loc[flights["arr_delay"].notna()].copy()
    flown[feature_schema.TARGET] = (
        flown["arr_delay"] >= feature_schema.DELAY_THRESHOLD_MINUTES
    ).astype("int64")
    flown["scheduled_departure"] = scheduled_departure(flown)
    local_day = flown["scheduled_departure"].dt.tz_convert(TIMEZONE).dt.normalize()
    flown["flight_date"] = local_day.dt.date
    flown["day_of_week"] = local_day.dt.dayofweek.astype("float64")
    flown["sched_dep_hour"] = (flown["sched_dep_time"] // 100).astype("float64")
    flown["month"] = flown["month"].astype("float64")
    # Deterministic row order: by departure, then the flight key.
    return flown.sort_values(
        ["scheduled_departure", "origin", "carrier", "flight"], kind="mergesort"
    ).reset_index(drop=True)


def observation_times(time_hour: pd.Series) -> pd.Series:
    """When each hourly weather row was observed: its time_hour label + the observation delay."""
    return time_hour + WEATHER_OBSERVATION_DELAY


def join_weather(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join: the latest weather at the origin observed at or before scheduled
    departure (observed_at = time_hour + WEATHER_OBSERVATION_DELAY).

    Observations later than the departure are never used; ones older than WEATHER_TOLERANCE
    leave the weather missing. Rows come back in the order of `flights`.
    """
    columns = ["origin", "time_hour", *WEATHER_COLUMNS]
    observations = weather.loc[weather["time_hour"].notna(), columns]
    observations = observations.assign(observed_at=observation_times(observations["time_hour"]))
    observations = observations.drop(columns="time_hour")
    observations = observations.sort_values(["observed_at", "origin"], kind="mergesort")
    left = flights.drop(columns=[c for c in WEATHER_COLUMNS if c in flights.columns])
    left = left.assign(_row=np.arange(len(left)))
    left = left.sort_values("scheduled_departure", kind="mergesort")
    joined = pd.merge_asof(
        left,
        observations,
        left_on="scheduled_departure",
        right_on="observed_at",
        by="origin",
        direction="backward",
        allow_exact_matches=True,
        tolerance=WEATHER_TOLERANCE,
    )
    joined = joined.sort_values("_row", kind="mergesort").drop(columns="_row")
    return joined.reset_index(drop=True)


def join_planes(flights: pd.DataFrame, planes: pd.DataFrame) -> pd.DataFrame:
    """Plane age (flight year - year built) and seats, by tail number; unknown planes missing."""
    table = planes.loc[planes["tailnum"].notna(), ["tailnum", "year", "seats"]]
    table = table.drop_duplicates("tailnum").rename(columns={"year": "plane_year"})
    joined = flights.merge(table, on="tailnum", how="left", sort=False)
    joined["plane_age"] = joined["year"] - joined["plane_year"]
    return joined


def build_features(
    flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame
) -> pd.DataFrame:
    """One row per flown flight: the label, every raw feature (categoricals as text), the date."""
    frame = join_planes(join_weather(label_flights(flights), weather), planes)
    frame["distance"] = frame["distance"].astype("float64")
    # The time columns stay for the split and for checking the point-in-time join.
    times = ["flight_date", "scheduled_departure", "observed_at"]
    columns = [feature_schema.TARGET, *feature_schema.FEATURE_ORDER, *times]
    return frame[columns]
