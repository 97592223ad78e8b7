"""Preprocess step: the point-in-time joined flights -> train/validation/test CSVs and
baseline.json.

    python3 preprocess.py --joined-dir DIR --train-dir DIR --validation-dir DIR --test-dir DIR
        --baseline-dir DIR [--window-end latest|YYYY-MM-DD] [--test-weeks 4
        --validation-weeks 4 --train-months 6]
        [--train-end YYYY-MM-DD --validation-end YYYY-MM-DD --test-end YYYY-MM-DD]
        [--min-weather-match 0.9 --min-plane-match 0.7]

--joined-dir holds the result of the offline-store join (mlops/pipeline_definition/
offline_join.py): Athena's JSON result files in AWS, gzip-compressed or not, one object per
line with the columns JOINED_TYPES names; the local runner writes the same from DuckDB. Each
flight already carries the weather at its origin known at departure (observed_at, the record's
event time) and its plane's age and seats. Features follow feature_schema: only what is known
when the flight is scheduled.

build_features() is the same join done in pandas over the raw tables (merge_asof): the
reference the offline-store join is tested against, and what the local drift report and the
traffic simulation use on raw tables.

The split is a rolling window resolved from the data (resolve_window): the test window is the
last --test-weeks weeks up to the window end (the newest flown date in the data for `latest`,
otherwise the given date, or the newest flown date before it), validation the
--validation-weeks weeks before, train the --train-months calendar months before that (or from
the first flown date). Explicit --train-end/--validation-end/--test-end (all three) override
it; train then starts at the first flown date. Flights outside the window are left out. The
categorical vocabulary comes from the training split only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import baseline_stats
import data_quality
import feature_schema
import numpy as np
import pandas as pd
import step_io

# The pandas feature build lives in flight_features.py; its names stay importable from here.
from flight_features import TIMEZONE as TIMEZONE
from flight_features import WEATHER_COLUMNS as WEATHER_COLUMNS
from flight_features import WEATHER_OBSERVATION_DELAY as WEATHER_OBSERVATION_DELAY
from flight_features import WEATHER_TOLERANCE as WEATHER_TOLERANCE
from flight_features import build_features as build_features
from flight_features import join_planes as join_planes
from flight_features import join_weather as join_weather
from flight_features import label_flights as label_flights
from flight_features import observation_times as observation_times
from flight_features import scheduled_departure as scheduled_departure

SPLITS = ("train", "validation", "test")
LATEST = "latest"
DEFAULT_WINDOW = {"test_weeks": 4, "validation_weeks": 4, "train_months": 6}


@dataclass(frozen=True)
class SplitDates:
    """Inclusive date ranges of the three consecutive splits (train_start None: from the first
    flown date in the data)."""

    train_end: dt.date
    validation_end: dt.date
    test_end: dt.date
    train_start: dt.date | None = None

    def __post_init__(self) -> None:
        if not self.train_end < self.validation_end < self.test_end:
            raise step_io.StepError(
                "split dates must increase: --train-end < --validation-end < --test-end, got "
                f"{self.train_end}, {self.validation_end}, {self.test_end}"
            )
        if self.train_start is not None and self.train_start > self.train_end:
            raise step_io.StepError(
                f"the train window starts {self.train_start}, after its end {self.train_end}"
            )

    def ends(self) -> dict[str, dt.date]:
        return {"train": self.train_end, "validation": self.validation_end, "test": self.test_end}


@dataclass(frozen=True)
class WindowSpec:
    """The rolling window's lengths; see resolve_window."""

    test_weeks: int = DEFAULT_WINDOW["test_weeks"]
    validation_weeks: int = DEFAULT_WINDOW["validation_weeks"]
    train_months: int = DEFAULT_WINDOW["train_months"]


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day of the month `months` calendar months earlier (clamped to month end)."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last_day))


def resolve_window(
    flown_dates: pd.Series, window_end: dt.date | None, spec: WindowSpec
) -> SplitDates:
    """The split dates for data whose flown dates are `flown_dates`.

    window_end None (`latest`) takes the newest flown date; a date takes the newest flown
    date at or before it, so a trigger may pass "today" while data lags by a day or two.
    """
    dates = flown_dates.dropna()
    if dates.empty:
        raise step_io.StepError("the data holds no flown flights: no window can be resolved")
    first, newest = dates.min(), dates.max()
    if window_end is not None:
        if window_end < first:
            raise step_io.StepError(
                f"--window-end {window_end} is before the first flown date {first} in the data"
            )
        newest = dates.loc[dates <= window_end].max()
    test_end = newest
    validation_end = test_end - dt.timedelta(weeks=spec.test_weeks)
    train_end = validation_end - dt.timedelta(weeks=spec.validation_weeks)
    if train_end < first:
        raise step_io.StepError(
            f"the data covers {first} to {newest}: too short for a {spec.test_weeks}-week test "
            f"and {spec.validation_weeks}-week validation window plus a training window"
        )
    train_start = months_before(train_end + dt.timedelta(days=1), spec.train_months)
    return SplitDates(train_end, validation_end, test_end, train_start=max(train_start, first))


# ---- The offline-store join's result ------------------------------------------------------

# Columns of the joined input and their types (the query's SELECT list).
JOINED_TYPES: dict[str, feature_schema.ColumnType] = {
    "year": "int",
    "month": "int",
    "day": "int",
    "sched_dep_time": "int",
    "arr_delay": "float",
    "carrier": "str",
    "flight": "int",
    "tailnum": "str",
    "origin": "str",
    "dest": "str",
    "distance": "float",
    "departure": "str",
    "observed_at": "str",
    **{name: "float" for name in WEATHER_COLUMNS},
    "plane_age": "float",
    "seats": "float",
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_json_lines(path: Path) -> pd.DataFrame:
    with path.open("rb") as handle:
        compressed = handle.read(2) == _GZIP_MAGIC
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding="utf-8") as text:
            lines = [line for line in text if line.strip()]
        # One json.loads for the whole file: several times faster than pandas' read_json.
        rows = json.loads("[" + ",".join(lines) + "]")
    except (ValueError, OSError, EOFError) as exc:
        raise step_io.StepError(f"{path.name} is not JSON lines: {exc}") from None
    if not all(isinstance(row, dict) for row in rows):
        raise step_io.StepError(f"{path.name} is not JSON lines: a line is not an object")
    return pd.DataFrame.from_records(rows, columns=list(JOINED_TYPES))


def read_joined(folder: Path) -> pd.DataFrame:
    """Every result file under folder (Athena names them; any name, gzip or plain), typed."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise step_io.StepError(f"--joined-dir {folder} holds no result files of the join")
    frame = pd.concat([_read_json_lines(p) for p in files], ignore_index=True)
    # Athena leaves null columns out of a JSON row: a column absent from every row is null.
    for name in JOINED_TYPES:
        if name not in frame.columns:
            frame[name] = None
    for name, kind in JOINED_TYPES.items():
        values = frame[name]
        if kind == "str":
            frame[name] = values.where(values.notna(), np.nan).astype(object)
        else:
            frame[name] = pd.to_numeric(values, errors="coerce").astype("float64")
    return frame[list(JOINED_TYPES)]


def features_from_joined(joined: pd.DataFrame) -> pd.DataFrame:
    """build_features' frame from the offline-store join's result."""
    frame = label_flights(joined)
    departure = pd.to_datetime(frame["departure"], errors="coerce", utc=True, format="ISO8601")
    disagree = int((departure != frame["scheduled_departure"]).sum())
    if disagree:
        raise step_io.StepError(
            f"flights: {disagree} rows have a time_hour that disagrees with their local "
            "year/month/day/sched_dep_time (the join matched weather by time_hour)"
        )
    frame["observed_at"] = pd.to_datetime(
        frame["observed_at"], errors="coerce", utc=True, format="ISO8601"
    )
    frame["distance"] = frame["distance"].astype("float64")
    times = ["flight_date", "scheduled_departure", "observed_at"]
    return frame[[feature_schema.TARGET, *feature_schema.FEATURE_ORDER, *times]]


# ---- Split and encoding ------------------------------------------------------------------


def split_by_date(frame: pd.DataFrame, dates: SplitDates) -> dict[str, pd.DataFrame]:
    """Consecutive date ranges: train up to train_end, then validation, then test."""
    day = frame["flight_date"]
    start = dates.train_start or day.min()
    masks = {
        "train": (day >= start) & (day <= dates.train_end),
        "validation": (day > dates.train_end) & (day <= dates.validation_end),
        "test": (day > dates.validation_end) & (day <= dates.test_end),
    }
    parts = {name: frame.loc[mask].reset_index(drop=True) for name, mask in masks.items()}
    for name, part in parts.items():
        if part.empty:
            raise step_io.StepError(
                f"the {name} split is empty: no flown flights up to {dates.ends()[name]} "
                f"after the previous split (data covers {day.min()} to {day.max()})"
            )
    return parts


def build_vocabulary(train: pd.DataFrame) -> dict[str, list[str]]:
    return {
        name: sorted(str(v) for v in train[name].dropna().unique())
        for name in feature_schema.CATEGORICAL_FEATURES
    }


def encode(frame: pd.DataFrame, vocabulary: dict[str, list[str]]) -> pd.DataFrame:
    """Label + FEATURE_ORDER; categoricals as vocabulary codes, unknown -1, missing empty."""
    encoded = pd.DataFrame({feature_schema.TARGET: frame[feature_schema.TARGET].astype("int64")})
    for feature in feature_schema.FEATURES:
        values = frame[feature.name]
        if feature.kind == "categorical":
            codes = pd.Series(
                pd.Categorical(values, categories=vocabulary[feature.name]).codes,
                index=frame.index,
                dtype="Int64",
            )
            encoded[feature.name] = codes.mask(values.isna())
        else:
            encoded[feature.name] = values.astype("float64")
    return encoded


def split_ranges(parts: dict[str, pd.DataFrame], dates: SplitDates) -> dict[str, list[str]]:
    """[first, last] date of each split: train starts at the first flown date in the data."""
    starts = {
        "train": dates.train_start or parts["train"]["flight_date"].min(),
        "validation": dates.train_end + dt.timedelta(days=1),
        "test": dates.validation_end + dt.timedelta(days=1),
    }
    return {name: [starts[name].isoformat(), dates.ends()[name].isoformat()] for name in SPLITS}


def feature_metadata(
    encoded: dict[str, pd.DataFrame],
    vocabulary: dict[str, list[str]],
    ranges: dict[str, list[str]],
) -> dict[str, Any]:
    target = feature_schema.TARGET
    return {
        "feature_order": list(feature_schema.FEATURE_ORDER),
        "categorical_vocabulary": vocabulary,
        "split": ranges,
        "rows": {name: len(encoded[name]) for name in SPLITS},
        "positive_rate": {name: float(encoded[name][target].mean()) for name in SPLITS},
    }


# ---- Entry point -------------------------------------------------------------------------


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (allowed: YYYY-MM-DD)") from exc


def optional_date(value: str) -> dt.date | None:
    """A date, or None for "" (pipeline parameters cannot be absent, only empty)."""
    return None if value == "" else iso_date(value)


def window_end_arg(value: str) -> dt.date | None:
    if value == LATEST:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a window end (allowed: {LATEST} or YYYY-MM-DD)"
        ) from exc


def weeks_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 520:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to 520")
    return number


def parse_args(argv: list[str] | None) -> Any:
    parser = step_io.argument_parser("preprocess.py", "Build features and the time split.")
    for name in ("joined", "train", "validation", "test", "baseline"):
        parser.add_argument(f"--{name}-dir", required=True)
    parser.add_argument(
        "--window-end",
        type=window_end_arg,
        default=None,
        help=f"last date of the test window: {LATEST} (newest data, default) or YYYY-MM-DD",
    )
    for name, default in DEFAULT_WINDOW.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=weeks_arg, default=default, dest=name
        )
    for name in SPLITS:
        parser.add_argument(
            f"--{name}-end",
            type=optional_date,
            default=None,
            help=f"explicit last date (inclusive) of the {name} split, YYYY-MM-DD; give all "
            "three or none (empty = resolved from the data)",
        )
    for what, default in (
        ("weather", data_quality.DEFAULT_MIN_WEATHER_MATCH),
        ("plane", data_quality.DEFAULT_MIN_PLANE_MATCH),
    ):
        parser.add_argument(
            f"--min-{what}-match",
            type=float,
            default=default,
            help=f"least share (above 0, at most 1) of each split's flights that must find "
            f"their {what}",
        )
    return parser.parse_args(argv)


def split_dates(args: Any, frame: pd.DataFrame) -> SplitDates:
    """Explicit dates when all three are given, else the rolling window over the data."""
    explicit = [args.train_end, args.validation_end, args.test_end]
    if any(d is not None for d in explicit):
        if any(d is None for d in explicit):
            raise step_io.StepError(
                "give all of --train-end, --validation-end and --test-end, or none of them "
                "(the window is then resolved from the data)"
            )
        return SplitDates(args.train_end, args.validation_end, args.test_end)
    spec = WindowSpec(args.test_weeks, args.validation_weeks, args.train_months)
    return resolve_window(frame["flight_date"], args.window_end, spec)


def write_split(folder: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_csv(folder / f"{name}.csv", index=False, na_rep="")


def run(argv: list[str] | None) -> int:
    args = parse_args(argv)
    joined_dir = step_io.existing_dir(args.joined_dir, "--joined-dir")
    frame = features_from_joined(read_joined(joined_dir))
    dates = split_dates(args, frame)
    parts = split_by_date(frame, dates)
    data_quality.check_training_data(
        parts, data_quality.JoinMinimums(args.min_weather_match, args.min_plane_match)
    )
    vocabulary = build_vocabulary(parts["train"])
    encoded = {name: encode(parts[name], vocabulary) for name in SPLITS}
    ranges = split_ranges(parts, dates)

    folders = {name: step_io.output_dir(getattr(args, f"{name}_dir")) for name in SPLITS}
    for name in SPLITS:
        write_split(folders[name], name, encoded[name])
    metadata = feature_metadata(encoded, vocabulary, ranges)
    step_io.write_json(folders["train"] / "feature_metadata.json", metadata)

    train_features = encoded["train"][list(feature_schema.FEATURE_ORDER)]
    baseline = baseline_stats.compute_baseline(train_features, vocabulary, ranges["train"])
    step_io.write_json(step_io.output_dir(args.baseline_dir) / "baseline.json", baseline)

    later = int((frame["flight_date"] > dates.test_end).sum())
    first = dates.train_start or frame["flight_date"].min()
    earlier = int((frame["flight_date"] < first).sum())
    summary = ", ".join(
        f"{n} {metadata['rows'][n]} rows {ranges[n][0]}..{ranges[n][1]} "
        f"({metadata['positive_rate'][n]:.1%} delayed)"
        for n in SPLITS
    )
    print(f"preprocess: {summary}; {earlier} earlier and {later} later flights left out")
    return 0


def main(argv: list[str] | None = None) -> int:
    return step_io.run_main(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
