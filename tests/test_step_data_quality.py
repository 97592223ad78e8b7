"""data_quality.py: preprocess refuses data whose joins found too little, or with one label
class, in one line naming the cause (issue #12: every origin unknown still scored AUC 0.674)."""

from __future__ import annotations

from pathlib import Path

import data_quality
import feature_schema
import numpy as np
import pandas as pd
import preprocess
import pytest
import step_io
from step_fixtures import preprocess_args, raw_tables, write_raw_tables


def _split(rows: int, weather_found: int, planes_found: int, delayed: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            feature_schema.TARGET: [1] * delayed + [0] * (rows - delayed),
            data_quality.WEATHER_MATCHED: [pd.Timestamp("2013-01-01")] * weather_found
            + [pd.NaT] * (rows - weather_found),
            data_quality.PLANE_MATCHED: [100.0] * planes_found + [np.nan] * (rows - planes_found),
        }
    )


MINIMUMS = data_quality.JoinMinimums(weather=0.9, plane=0.7)


def test_rates_exactly_at_the_minimums_pass() -> None:
    data_quality.check_training_data({"train": _split(10, 9, 7, 3)}, MINIMUMS)


@pytest.mark.parametrize(
    ("split", "says"),
    [
        (_split(100, 89, 70, 30), "train split: only 89.0% of 100 flights found their weather"),
        (_split(100, 90, 69, 30), "train split: only 69.0% of 100 flights found their plane"),
        (_split(10, 10, 10, 0), "train split: all 10 flights are on time"),
        (_split(10, 10, 10, 10), "train split: all 10 flights are delayed"),
        (_split(0, 0, 0, 0), "train split: only 0.0% of 0 flights"),
    ],
)
def test_just_below_a_minimum_or_one_class_is_refused(split: pd.DataFrame, says: str) -> None:
    with pytest.raises(step_io.StepError) as info:
        data_quality.check_training_data({"train": split}, MINIMUMS)
    assert str(info.value).startswith(says)
    assert "\n" not in str(info.value)


def test_every_split_is_checked() -> None:
    parts = {"train": _split(10, 10, 10, 3), "test": _split(10, 10, 10, 0)}
    with pytest.raises(step_io.StepError, match=r"^test split: all 10 flights are on time"):
        data_quality.check_training_data(parts, MINIMUMS)


@pytest.mark.parametrize("value", [-0.1, 0.0, 1.01, float("nan")])
def test_minimums_outside_0_exclusive_to_1_are_refused(value: float) -> None:
    with pytest.raises(step_io.StepError, match="must be greater than 0 and at most 1"):
        data_quality.JoinMinimums(weather=value)
    with pytest.raises(step_io.StepError, match="--min-plane-match must be greater than 0"):
        data_quality.JoinMinimums(plane=value)


@pytest.mark.parametrize("value", [0.001, 1.0])
def test_minimums_at_the_edges_are_accepted(value: float) -> None:
    assert data_quality.JoinMinimums(weather=value, plane=value).plane == value


# --- through preprocess.py on the real January-February slice ---------------------------


def _run(tmp_path: Path, tables: dict[str, pd.DataFrame], *extra: str) -> int:
    raw = write_raw_tables(tmp_path / "raw", tables)
    return int(preprocess.main([*preprocess_args(raw, tmp_path / "out"), *extra]))


def test_weather_with_every_origin_unknown_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = raw_tables()
    tables["weather"]["origin"] = "XXX"
    code = _run(tmp_path, tables)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("ERROR: train split: only 0.0% of ")
    assert "found their weather (minimum 90.0%)" in err
    assert not (tmp_path / "out" / "train" / "train.csv").exists()  # nothing half-written


def test_planes_that_match_no_tail_number_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = raw_tables()
    tables["planes"]["tailnum"] = "X" + tables["planes"]["tailnum"]
    code = _run(tmp_path, tables)
    err = capsys.readouterr().err
    assert code == 1 and "found their plane (minimum 70.0%)" in err


def test_a_lower_configured_minimum_lets_it_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = raw_tables()
    # Every other plane unknown: about 40% of flights find theirs.
    tables["planes"] = tables["planes"].iloc[::2]
    assert _run(tmp_path / "default", tables) == 1
    assert "found their plane (minimum 70.0%)" in capsys.readouterr().err
    assert _run(tmp_path / "lowered", tables, "--min-plane-match", "0.3") == 0


def test_a_zero_minimum_is_one_line_not_a_check_that_cannot_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(tmp_path, raw_tables(), "--min-plane-match", "0")
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1
    assert "--min-plane-match must be greater than 0 and at most 1, got 0.0" in err


def test_one_label_class_is_one_line_not_a_backtrace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = raw_tables()
    flown = tables["flights"]["arr_delay"] != ""
    tables["flights"].loc[flown, "arr_delay"] = "0"
    code = _run(tmp_path, tables)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "flights are on time; a model needs both on-time and delayed" in err


def test_the_bundled_slice_passes_the_defaults(tmp_path: Path) -> None:
    code = _run(tmp_path, raw_tables())
    assert code == 0
