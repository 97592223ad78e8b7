"""Training/serving parity: for real flights, the features the inference API assembles from
the booking request and the online store equal the row preprocess.py builds for training.

Weather is compared where both point-in-time rules agree (departures at minute 51 or later):
preprocess.py still treats an hourly observation as known at HH:00, the ingestion at HH:51
(feature_schema.WEATHER_OBSERVATION_DELAY_MINUTES); once preprocess uses the constant,
every flight can be compared.
"""

from __future__ import annotations

import json
import math

import feature_schema
import pandas as pd
import preprocess
import pytest
import step_io
from step_fixtures import write_raw_slice

from mlops.local.feature_store.ingest import ingest_folder
from mlops.local.feature_store.online import LocalOnlineStore
from mlops.local.serve.server import front_door, online_lookup

SAMPLE = 400
REQUEST_FIELDS = ("carrier", "flight", "origin", "dest", "tailnum")
WEATHER = tuple(f.name for f in feature_schema.features_of_group("weather"))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, str], pd.Series]]:
    raw = write_raw_slice(tmp_path_factory.mktemp("raw"))
    store_dir = tmp_path_factory.mktemp("store")
    ingest_folder(store_dir, raw, clock=lambda: pd.Timestamp("2026-01-01", tz="UTC"))
    flights = step_io.read_table(raw, "flights")
    training = preprocess.build_features(
        flights, step_io.read_table(raw, "weather"), step_io.read_table(raw, "planes")
    )
    # build_features keeps the order of label_flights: flown flights sorted by departure.
    flown = preprocess.label_flights(flights)
    assert len(flown) == len(training)
    chosen = flown.dropna(subset=["tailnum"]).sample(n=SAMPLE, random_state=3).index
    api = front_door()
    store = LocalOnlineStore(store_dir)
    lookup = online_lookup(store)
    out = []
    for index in chosen:
        flight = flown.loc[index]
        local = flight["scheduled_departure"].tz_convert(preprocess.TIMEZONE)
        body = {name: flight[name] for name in REQUEST_FIELDS}
        body["flight"] = int(body["flight"])
        body["distance"] = float(flight["distance"])
        body["scheduled_departure"] = local.isoformat()
        request = api.parse_request(json.dumps(body))
        online = lookup(
            __import__("feature_records").weather_candidates(
                request.origin, request.scheduled_departure
            ),
            request.tailnum,
        )
        out.append((api.feature_values(request, online), training.loc[index]))
    store.close()
    return out


def _same(served: str, trained: object) -> bool:
    if served == "":
        return trained is None or (isinstance(trained, float) and math.isnan(trained))
    if isinstance(trained, str):
        return served == trained
    return math.isclose(float(served), float(trained), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]


def test_flight_and_plane_features_match_training(
    pairs: list[tuple[dict[str, str], pd.Series]],
) -> None:
    names = [n for n in feature_schema.FEATURE_ORDER if n not in WEATHER]
    mismatches = [
        (name, served[name], trained[name])
        for served, trained in pairs
        for name in names
        if not _same(served[name], trained[name])
    ]
    assert mismatches == []
    # The comparison is not vacuous: most sampled planes are known to both sides.
    assert sum(served["seats"] != "" for served, _ in pairs) > SAMPLE * 0.8


def test_weather_matches_training_where_both_rules_agree(
    pairs: list[tuple[dict[str, str], pd.Series]],
) -> None:
    agreeing = [
        (served, trained)
        for served, trained in pairs
        if trained["scheduled_departure"].minute >= feature_schema.WEATHER_OBSERVATION_DELAY_MINUTES
    ]
    assert len(agreeing) > 20
    mismatches = [
        (name, served[name], trained[name])
        for served, trained in agreeing
        for name in WEATHER
        if not _same(served[name], trained[name])
    ]
    assert mismatches == []
    assert sum(served["temp"] != "" for served, _ in agreeing) > len(agreeing) * 0.9


def test_serving_and_training_share_the_weather_age_limit() -> None:
    import feature_records

    assert pd.Timedelta(feature_records.WEATHER_MAX_AGE) == preprocess.WEATHER_TOLERANCE
